/* The round board while a run is under way (the page marks it with data-refresh on <main>):
   reload every 3 s (a reload keeps the scroll position, unlike a meta refresh, which the
   #round anchor turns into a no-op), but never while a form field has the focus, so a
   researcher filling in a form does not lose what they typed. */
(() => {
  if (!document.querySelector("[data-board-refresh]")) return;
  setInterval(() => {
    const field = document.activeElement;
    if (!field || !["INPUT", "SELECT", "TEXTAREA"].includes(field.tagName)) location.reload();
  }, 3000);
})();
