// Configuration pages: reorder routing rules by dragging their rows. Without this script
// every row still has "Move up" / "Move down" buttons (plain forms), which is also the way
// for the keyboard. A drop posts the scope's new order together with the order the page
// showed; the server answers with the scope's list as it now is (or, when the rules changed
// meanwhile, with the current order and a message), which replaces the old one. Focus goes
// back to the moved rule's row.
"use strict";

const FRAGMENT_HEADER = "X-Tierdesk-Fragment";
let dragged = null;

function reorderBody(element) {
  return element instanceof Element ? element.closest("tbody[data-reorder]") : null;
}

function ruleRow(element) {
  return element instanceof Element ? element.closest("tr[data-rule-id]") : null;
}

function makeDraggable(root) {
  for (const row of root.querySelectorAll("tbody[data-reorder] tr[data-rule-id]")) {
    row.draggable = true;
    row.classList.add("draggable");
  }
}

function focusMoved(section, ruleId) {
  const row = section.querySelector(`tr[data-rule-id="${ruleId}"]`);
  if (!row) return;
  const button = row.querySelector("button[data-moved]") || row.querySelector("button:not([disabled])");
  if (!button) row.tabIndex = -1; // focusable by script only, not a tab stop of its own
  (button || row).focus();
}

async function saveOrder(body, ruleId) {
  const section = body.closest("section[data-scope]");
  const order = [...body.querySelectorAll("tr[data-rule-id]")].map((r) => r.dataset.ruleId);
  if (order.join(",") === body.dataset.seen) return;
  const token = section.querySelector("input[name=csrfmiddlewaretoken]");
  const data = new FormData();
  data.append("csrfmiddlewaretoken", token ? token.value : "");
  data.append("scope", body.dataset.scope);
  data.append("seen", body.dataset.seen);
  data.append("order", order.join(","));
  data.append("moved", ruleId);
  body.setAttribute("aria-busy", "true");
  let html;
  try {
    const response = await fetch(body.dataset.reorder, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { [FRAGMENT_HEADER]: "1" },
    });
    html = await response.text();
  } catch {
    // The network failed: reload, which shows the order as it is stored.
    window.location.reload();
    return;
  }
  const holder = document.createElement("div");
  holder.innerHTML = html;
  const fresh = holder.querySelector("section[data-scope]");
  if (!fresh) {
    window.location.reload();
    return;
  }
  section.replaceWith(fresh);
  makeDraggable(fresh);
  focusMoved(fresh, ruleId);
}

document.addEventListener("dragstart", (event) => {
  const row = ruleRow(event.target);
  if (!row || !reorderBody(row)) return;
  dragged = row;
  row.classList.add("dragging");
  event.dataTransfer.effectAllowed = "move";
  event.dataTransfer.setData("text/plain", row.dataset.ruleId);
});

document.addEventListener("dragover", (event) => {
  const row = ruleRow(event.target);
  if (!dragged || !row || reorderBody(row) !== reorderBody(dragged)) return;
  event.preventDefault(); // allows the drop here
  event.dataTransfer.dropEffect = "move";
  if (row === dragged) return;
  const box = row.getBoundingClientRect();
  const below = event.clientY > box.top + box.height / 2;
  row.parentElement.insertBefore(dragged, below ? row.nextElementSibling : row);
});

document.addEventListener("drop", (event) => {
  if (dragged && reorderBody(event.target) === reorderBody(dragged)) event.preventDefault();
});

document.addEventListener("dragend", () => {
  if (!dragged) return;
  const row = dragged;
  dragged = null;
  row.classList.remove("dragging");
  const body = reorderBody(row);
  if (body) saveOrder(body, row.dataset.ruleId);
});

document.addEventListener("DOMContentLoaded", () => {
  makeDraggable(document);
  // After a move by button the page comes back with that rule's button marked: keep the
  // focus there (autofocus does too; this also covers a page restored from the history).
  document.querySelector("tbody[data-reorder] button[data-moved]")?.focus();
});

// A secret shown once: "Copy" puts it on the clipboard (or, where the browser will not,
// selects it for Ctrl-C).
document.addEventListener("click", (event) => {
  const button = event.target instanceof Element ? event.target.closest("button[data-copy]") : null;
  if (!button) return;
  const field = document.getElementById(button.dataset.copy);
  if (!field) return;
  field.select();
  if (navigator.clipboard) {
    navigator.clipboard.writeText(field.value).then(
      () => { button.textContent = "Copied"; },
      () => {},
    );
  }
});
