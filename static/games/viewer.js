// Game viewer: the left and right arrow keys step to the previous and next turn.
document.addEventListener("keydown", function (event) {
  if (event.target.closest("input, textarea, select") || event.altKey || event.ctrlKey || event.metaKey) return;
  var link = document.getElementById(event.key === "ArrowLeft" ? "prev-turn" : event.key === "ArrowRight" ? "next-turn" : "");
  if (link) { window.location.href = link.href; }
});
