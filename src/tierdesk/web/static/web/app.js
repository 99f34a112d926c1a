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
