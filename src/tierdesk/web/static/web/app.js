// tierdesk pages: small behaviours on top of server-rendered HTML. No inline handlers: the
// Content-Security-Policy allows scripts from tierdesk itself only.
"use strict";

document.addEventListener("keydown", (event) => {
  // "/" jumps to the queue search, as in most desks; not while typing somewhere.
  const target = event.target;
  const typing = target instanceof HTMLElement && target.closest("input, textarea, select, [contenteditable]");
  if (event.key === "/" && !typing && !event.ctrlKey && !event.metaKey && !event.altKey) {
    const search = document.getElementById("id_text");
    if (search) {
      event.preventDefault();
      search.focus();
    }
  }
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
