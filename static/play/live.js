// Researchers' live view of a study's lobby and games (polls a JSON endpoint).
(function () {
  "use strict";
  const root = document.getElementById("live");
  function row(cells) {
    const tr = document.createElement("tr");
    for (const value of cells) { const td = document.createElement("td"); td.textContent = value === null || value === undefined ? "" : value; tr.appendChild(td); }
    return tr;
  }
  async function refresh() {
    try {
      const response = await fetch(root.dataset.url, { credentials: "same-origin" });
      if (!response.ok) return;
      const data = await response.json();
      document.getElementById("n-waiting").textContent = data.counts.waiting;
      document.getElementById("n-playing").textContent = data.counts.playing;
      document.getElementById("waiting").replaceChildren(...data.waiting.map((w) => row([w.round, w.worker, w.seconds, w.present ? "yes" : "no"])));
      document.getElementById("playing").replaceChildren(...data.playing.map((g) => row([g.external_id, g.round, g.system, g.turn + 1, g.phase, g.seconds_left])));
      document.getElementById("ended").replaceChildren(...data.ended.map((g) => row([g.external_id, g.round, g.system, g.turn + 1, g.outcome, g.end_reason])));
    } catch (error) { /* the next refresh tries again */ }
  }
  refresh();
  setInterval(refresh, 2000);
})();
