// tierdesk pages: small behaviours on top of server-rendered HTML. No inline handlers: the
// Content-Security-Policy allows scripts from tierdesk itself only.
"use strict";

// Keyboard shortcuts (listed in the "Shortcuts" dialog, opened with "?"). Not while typing
// in a field, and never with Ctrl, Alt or Meta, which belong to the browser.
// A checkbox or a button takes no letters: a queue row's checkbox keeps j and k working.
const TYPED_INTO =
  "input:not([type=checkbox]):not([type=radio]):not([type=button]):not([type=submit]):not([type=reset])," +
  " textarea, select, [contenteditable]";

function typingIn(target) {
  return target instanceof HTMLElement && target.closest(TYPED_INTO);
}

// j / k move through the queue's rows by their ticket links, from the row that has focus
// (its link or its checkbox); from elsewhere j starts at the first row and k at the last.
function moveInList(step) {
  const links = [...document.querySelectorAll("a[data-row-link]")];
  if (links.length === 0) return;
  const row = document.activeElement?.closest("tr");
  const at = row ? links.findIndex((link) => row.contains(link)) : -1;
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
  } else if (target.tagName === "SUMMARY") {
    // open, never toggle shut: pressing s twice still leaves the resolve form in front
    target.parentElement.open = true;
    target.parentElement.querySelector("textarea, select, input:not([type=hidden])")?.focus();
  } else {
    target.click();
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

// The live refresh replaces the queue's rows every few seconds, and with them the element
// that had keyboard focus. Before the swap, remember which ticket's row held it (and which
// part of the row: its link or its checkbox) or, outside the rows, which control it was;
// after it, focus the same thing in the new rows. When that ticket has left the queue, the
// row now in its place takes the focus, so j and k go on from there. The page stays where
// the reader left it: while the new rows go in beside the old ones the browser's scroll
// anchoring moves the page, so the scroll position is put back after the swap.
let queueFocus = null;
let queueScroll = null;

function focusablesIn(region) {
  return [...region.querySelectorAll("a[href], button, input, select, textarea")];
}

document.addEventListener("htmx:beforeSwap", (event) => {
  const region = event.detail?.target;
  queueFocus = null;
  queueScroll = null;
  if (region?.id !== "queue-rows") return;
  queueScroll = { x: window.scrollX, y: window.scrollY };
  const active = document.activeElement;
  if (!(active instanceof HTMLElement) || !region.contains(active)) return;
  const row = active.closest("tbody tr");
  const link = row?.querySelector("a[data-row-link]");
  if (row && link) {
    queueFocus = {
      ticket: link.getAttribute("href"),
      part: active.matches("[data-row-select]") ? "input[data-row-select]" : "a[data-row-link]",
      rowIndex: [...row.parentElement.children].indexOf(row),
    };
  } else {
    queueFocus = { control: focusablesIn(region).indexOf(active) };
  }
});

document.addEventListener("htmx:afterSwap", (event) => {
  const region = event.target;
  if (!(region instanceof HTMLElement) || region.id !== "queue-rows") return;
  if (queueScroll) window.scrollTo(queueScroll.x, queueScroll.y);
  queueScroll = null;
  if (!queueFocus) return;
  const wanted = queueFocus;
  queueFocus = null;
  let next = null;
  if (wanted.ticket !== undefined) {
    const links = [...region.querySelectorAll("a[data-row-link]")];
    const same = links.find((link) => link.getAttribute("href") === wanted.ticket);
    const row = (same ?? links[Math.min(wanted.rowIndex, links.length - 1)])?.closest("tr");
    next = row?.querySelector(same ? wanted.part : "a[data-row-link]") ?? null;
  } else if (wanted.control >= 0) {
    next = focusablesIn(region)[wanted.control] ?? null;
  }
  // nothing left to hold the focus (the queue is empty now): the main region takes it
  (next ?? document.getElementById("main"))?.focus({ preventScroll: true });
});

// --- ticket knowledge base ---------------------------------------------------------------
// The ticket page's "Relevant articles": "Insert link" and "Insert text" put an article into
// the reply at the caret (the text is fetched from the server, which checks the agent may
// read it) and tick it under "Articles in this reply", which the server records as linked
// when the reply is sent. An article the requester cannot open (data-tkb-public="0") goes
// into internal notes only: its buttons are disabled while the reply is public, and the
// server refuses it in a public reply too.
function tkbReplyIsInternal() {
  return Boolean(document.getElementById("id_internal")?.checked);
}

function tkbSyncButtons() {
  const internal = tkbReplyIsInternal();
  for (const button of document.querySelectorAll("button[data-tkb-insert]")) {
    button.disabled = button.dataset.tkbPublic !== "1" && !internal;
  }
}

function tkbSay(text) {
  const status = document.getElementById("tkb-status");
  if (status) status.textContent = text;
}

function tkbInsertAtCaret(box, text, block) {
  const start = box.selectionStart ?? box.value.length;
  const end = box.selectionEnd ?? start;
  const before = box.value.slice(0, start);
  let lead = "";
  if (before && block) lead = before.endsWith("\n\n") ? "" : before.endsWith("\n") ? "\n" : "\n\n";
  else if (before && !/\s$/.test(before)) lead = " ";
  const trail = block ? "\n" : "";
  box.setRangeText(lead + text + trail, start, end, "end");
  box.dispatchEvent(new Event("input", { bubbles: true }));
  box.focus();
}

function tkbRemember(id, title) {
  const fieldset = document.getElementById("tkb-inserted");
  const list = fieldset?.querySelector(".tkb-inserted-list");
  if (!fieldset || !list) return;
  const existing = list.querySelector(`input[name="kb_articles"][value="${CSS.escape(id)}"]`);
  if (existing) {
    existing.checked = true;
  } else {
    const row = document.createElement("div");
    row.className = "tkb-check";
    const box = document.createElement("input");
    box.type = "checkbox";
    box.name = "kb_articles";
    box.value = id;
    box.id = `tkb-article-${id}`;
    box.checked = true;
    const label = document.createElement("label");
    label.htmlFor = box.id;
    label.textContent = title;
    row.append(box, " ", label);
    list.append(row);
  }
  fieldset.hidden = false;
}

async function tkbInsert(button) {
  const box = document.getElementById("id_body");
  if (!box) return;
  const { tkbInsert: how, tkbId: id, tkbTitle: title } = button.dataset;
  if (button.dataset.tkbPublic !== "1" && !tkbReplyIsInternal()) {
    tkbSay(`“${title}” is for agents only: tick “Internal note” to insert it.`);
    return;
  }
  if (how === "link") {
    tkbInsertAtCaret(box, button.dataset.tkbLink, false);
  } else {
    let article;
    try {
      const answer = await fetch(button.dataset.tkbSource, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      if (!answer.ok) throw new Error(String(answer.status));
      article = await answer.json();
    } catch {
      tkbSay(`“${title}” could not be loaded: reload the page and try again.`);
      return;
    }
    tkbInsertAtCaret(box, article.body.trim(), true);
  }
  tkbRemember(id, title);
  tkbSay(`Inserted “${title}” into the ${tkbReplyIsInternal() ? "internal note" : "reply"}.`);
}

document.addEventListener("click", (event) => {
  const button = event.target instanceof Element ? event.target.closest("button[data-tkb-insert]") : null;
  if (button) tkbInsert(button);
});
document.addEventListener("change", (event) => {
  if (event.target instanceof Element && event.target.id === "id_internal") tkbSyncButtons();
});
// The r and n shortcuts tick or untick "Internal note" and then focus the reply.
document.addEventListener("focusin", (event) => {
  if (event.target instanceof Element && event.target.id === "id_body") tkbSyncButtons();
});
document.addEventListener("htmx:afterSwap", (event) => {
  if (event.target instanceof Element && event.target.id === "tkb-results") tkbSyncButtons();
});
document.addEventListener("DOMContentLoaded", tkbSyncButtons);

// console knowledge base: the article editor's keys. Ctrl+S (Cmd+S on a Mac) saves, as its
// Save button does; Ctrl+Shift+P (Cmd+Shift+P) or Alt+P shows or hides the preview beside
// the text, which the server renders through the same Markdown and allow-list as the saved
// article and renews while the text changes. Tab is left alone: in the text it moves on to
// the next field, never trapping the keyboard there. The focus stays where it was.
function kbEditor() {
  return document.querySelector("form[data-kb-editor]");
}

function kbTogglePreview(editor) {
  const panel = document.getElementById("kb-preview");
  const toggle = editor.querySelector("[data-kb-preview-toggle]");
  if (!panel || !toggle) return;
  const show = panel.hidden;
  panel.hidden = !show;
  editor.classList.toggle("previewing", show);
  toggle.setAttribute("aria-expanded", String(show));
  toggle.textContent = show ? "Hide preview" : "Show preview";
  if (show) htmx.trigger(panel, "kbpreview");
}

document.addEventListener("keydown", (event) => {
  const editor = kbEditor();
  if (!editor || event.repeat) return;
  const command = event.ctrlKey || event.metaKey;
  const key = (event.key || "").toLowerCase(); // autofill sends keydowns without a key
  // event.code: Alt+P types "π" on a Mac keyboard
  const p = key === "p" || event.code === "KeyP";
  if (command && !event.shiftKey && !event.altKey && (key === "s" || event.code === "KeyS")) {
    event.preventDefault();
    editor.requestSubmit(editor.querySelector("button[type=submit]"));
  } else if (p && ((command && event.shiftKey && !event.altKey) || (event.altKey && !command))) {
    event.preventDefault();
    kbTogglePreview(editor);
  }
});

document.addEventListener("click", (event) => {
  const toggle = event.target instanceof Element ? event.target.closest("[data-kb-preview-toggle]") : null;
  const editor = toggle?.closest("form[data-kb-editor]");
  if (editor) kbTogglePreview(editor);
});

// A hidden preview asks for nothing while the text is typed.
document.addEventListener("htmx:beforeRequest", (event) => {
  const source = event.detail?.elt;
  if (source?.id === "kb-preview" && source.hidden) event.preventDefault();
});

// Refusals the reader must see. htmx swaps nothing for a 4xx or 5xx answer (its default
// responseHandling), so a region marked data-swap-errors takes an error answer that is that
// region again, with the message in it (the server's 400, 403, 404, 409, 413 or 422): the
// answer carries the region's own id. Any other failure (a refused CSRF token, a server
// error, no connection) is said in words inside the element named by the requesting
// form's data-htmx-error, so nothing fails silently.
document.addEventListener("htmx:beforeSwap", (event) => {
  const detail = event.detail;
  const region = detail?.target;
  if (!detail?.isError || !(region instanceof Element) || !region.hasAttribute("data-swap-errors")) return;
  if (region.id && String(detail.serverResponse ?? "").includes(`id="${region.id}"`)) {
    detail.shouldSwap = true;
    detail.isError = false;
  }
});

function htmxFailureText(status) {
  if (status === 403) return "It was refused (403): your session may have ended. Reload the page and try again.";
  if (status === 404) return "This page's article is no longer there (404): reload the page.";
  if (status === 429) return "Too many requests just now (429): wait a moment and try again.";
  if (status) return `It could not be saved (error ${status}): try again in a moment.`;
  return "The server could not be reached: check the connection and try again.";
}

function htmxSayFailure(event) {
  const source = event.detail?.elt;
  const where = source instanceof Element ? source.closest("[data-htmx-error]") : null;
  const box = where ? document.getElementById(where.getAttribute("data-htmx-error")) : null;
  if (box) box.textContent = htmxFailureText(event.detail?.xhr?.status ?? 0);
}

document.addEventListener("htmx:responseError", htmxSayFailure);
document.addEventListener("htmx:sendError", htmxSayFailure);

// console knowledge base: the editor's Images section. Uploads and removals go through HTMX
// and swap only the section, so the text being typed stays; a refusal (400, 403, 409, 413)
// comes back as the section with the message beside the file field and is swapped in too
// (data-swap-errors, above). After a swap the focus goes to the message, or to the refused
// file field. "Insert" (shown only with scripts) puts the image's Markdown into the text at
// the caret, on its own line; "Remove" (shown only with scripts) asks first, in a dialog.
function kbShowInsertButtons() {
  for (const button of document.querySelectorAll("button[data-kb-insert-image], button[data-kb-remove-opener]")) {
    button.hidden = false;
  }
}

document.addEventListener("htmx:afterSwap", (event) => {
  if (event.detail?.target?.id !== "kb-images") return;
  kbShowInsertButtons();
  const section = document.getElementById("kb-images");
  section?.querySelector("[aria-invalid=true], [data-kb-focus]")?.focus();
});

document.addEventListener("click", (event) => {
  const button = event.target instanceof Element ? event.target.closest("button[data-kb-insert-image]") : null;
  const box = kbEditor()?.querySelector("textarea[name=body]");
  if (!button || !box) return;
  tkbInsertAtCaret(box, button.dataset.kbInsertImage, true);
  const said = document.getElementById("kb-images-inserted");
  if (said) said.textContent = `Inserted ${button.dataset.kbInsertImage} into the text.`;
});

document.addEventListener("DOMContentLoaded", kbShowInsertButtons);
