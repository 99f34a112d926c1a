// tierdesk pages: small behaviours on top of server-rendered HTML. No inline handlers: the
// Content-Security-Policy allows scripts from tierdesk itself only.
"use strict";

// Keyboard shortcuts (listed in the "Shortcuts" dialog, opened with "?"). Not while typing
// in a field, and never with Ctrl, Alt or Meta, which belong to the browser.
function typingIn(target) {
  return target instanceof HTMLElement && target.closest("input, textarea, select, [contenteditable]");
}

function moveInList(step) {
  const links = [...document.querySelectorAll("a[data-row-link]")];
  if (links.length === 0) return;
  const at = links.indexOf(document.activeElement);
  const next = at === -1 ? (step > 0 ? 0 : links.length - 1) : Math.min(links.length - 1, Math.max(0, at + step));
  links[next].focus();
}

function runShortcut(key) {
  if (key === "?") {
    document.getElementById("shortcuts")?.showModal();
    return true;
  }
  if (key === "/") {
    const search = document.getElementById("id_text");
    search?.focus();
    return Boolean(search);
  }
  if ((key === "j" || key === "k") && document.querySelector("a[data-row-link]")) {
    moveInList(key === "j" ? 1 : -1);
    return true;
  }
  const target = document.querySelector(`[data-key="${key}"]`);
  if (!target) return false;
  if (target.dataset.focus) {
    const checkbox = document.getElementById(target.dataset.check || target.dataset.uncheck || "");
    if (checkbox) checkbox.checked = Boolean(target.dataset.check);
    document.getElementById(target.dataset.focus)?.focus();
  } else {
    target.click();
    if (target.tagName === "SUMMARY") target.parentElement.querySelector("textarea, select")?.focus();
  }
  return true;
}

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || typingIn(event.target)) return;
  if (document.querySelector("dialog[open]") && event.key !== "Escape") return;
  if (runShortcut(event.key)) event.preventDefault();
});

// Dialogs: a button with data-opens="ID" opens the <dialog id="ID"> as a modal, one with
// data-closes="ID" closes it; a dialog marked data-open-on-load (its form came back with
// errors) opens at once, so the message and what was typed are in front of the user.
document.addEventListener("click", (event) => {
  const target = event.target instanceof Element ? event.target : null;
  const opener = target?.closest("[data-opens]");
  if (opener) {
    document.getElementById(opener.getAttribute("data-opens"))?.showModal();
    return;
  }
  const closer = target?.closest("[data-closes]");
  if (closer) {
    document.getElementById(closer.getAttribute("data-closes"))?.close();
  }
});

document.addEventListener("DOMContentLoaded", () => {
  for (const dialog of document.querySelectorAll("dialog[data-open-on-load]")) {
    dialog.showModal();
  }
});

// The queue's live refresh waits while rows are selected for a bulk action: replacing the
// rows would drop the selection.
document.addEventListener("htmx:beforeRequest", (event) => {
  const target = event.detail?.elt;
  if (target?.id === "queue-rows" && document.querySelector("input[data-row-select]:checked")) {
    event.preventDefault();
  }
});
