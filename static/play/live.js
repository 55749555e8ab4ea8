// Researchers' live view of a study's lobby and games (polls a JSON endpoint).
(function () {
  "use strict";
  const root = document.getElementById("live");
  function cell(value) {
    const td = document.createElement("td");
    if (value && typeof value === "object" && value.href) {
      const link = document.createElement("a");
      link.href = value.href;
      link.textContent = value.text;
      td.appendChild(link);
    } else {
      td.textContent = value === null || value === undefined ? "" : value;
    }
    return td;
  }
  function row(cells) {
    const tr = document.createElement("tr");
    for (const value of cells) tr.appendChild(cell(value));
    return tr;
  }
  // A table body with its rows, or one row saying that there are none (data-empty).
  function fill(id, rows) {
    const body = document.getElementById(id);
    if (rows.length) { body.replaceChildren(...rows); return; }
    const tr = document.createElement("tr");
    tr.className = "empty-row";
    const td = document.createElement("td");
    td.colSpan = body.closest("table").querySelectorAll("thead th").length;
    td.textContent = body.dataset.empty;
    tr.appendChild(td);
    body.replaceChildren(tr);
  }
  function gameLink(g) { return { href: g.replay, text: g.external_id || "game " + g.id }; }
  function systemCell(g) { return g.system + " (" + g.listener + ")"; }
  async function refresh() {
    try {
      const response = await fetch(root.dataset.url, { credentials: "same-origin" });
      if (!response.ok) return;
      const data = await response.json();
      document.getElementById("n-waiting").textContent = data.counts.waiting;
      document.getElementById("n-playing").textContent = data.counts.playing;
      fill("waiting", data.waiting.map((w) => row([w.round, w.worker, w.seconds, w.present ? "yes" : "no"])));
      fill("playing", data.playing.map((g) => row([gameLink(g), g.round, systemCell(g), g.turn + 1, g.phase, g.seconds_left])));
      fill("ended", data.ended.map((g) => row([gameLink(g), g.round, systemCell(g), g.turns, g.outcome, g.end_reason])));
      root.dataset.refreshed = "1";
    } catch (error) { /* the next refresh tries again */ }
  }
  refresh();
  setInterval(refresh, 2000);
})();
