// Lobby: waits for the server to pair this worker, then opens the game. The server says what the
// worker waits for ("waiting": another player; "paired" with partner "model": a model game) and,
// when it refuses the worker, why ("refused", then a close code). A server taking too many
// arrivals at once says "busy" (then closes with 4503): the page shows its message and opens the
// socket again after the seconds it names.
(function () {
  "use strict";
  const root = document.getElementById("lobby");
  const offset = Number(root.dataset.server) - Date.now();
  const arrived = Number(root.dataset.arrived), leaveAt = Number(root.dataset.leave);
  const status = document.getElementById("lobby-status");
  let socket = null, retry = 0, done = false, busyFor = 0;

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + root.dataset.ws);
    socket.onopen = () => { retry = 0; };
    socket.onmessage = (event) => {
      // After "paired" (or "refused") nothing else counts: the socket may say "paired" again
      // (a heartbeat's answer), and a second location.assign would abort the first navigation.
      if (done) return;
      const message = JSON.parse(event.data);
      if (message.type === "waiting") status.textContent = "Waiting for another player…";
      else if (message.type === "busy") {
        busyFor = Number(message.retry_in) || 3;
        status.textContent = message.message;
      }
      else if (message.type === "paired") {
        done = true;
        status.textContent = message.partner === "model" ? "Your partner is a model, starting…" : "Partner found! Starting…";
        location.assign(message.url);
      } else if (message.type === "refused") {
        done = true;
        status.textContent = message.message;
        document.getElementById("leave-form").remove();
      }
    };
    socket.onclose = (event) => {
      if (done) return;
      if (event.code === 4404 || event.code === 4403 || event.code === 4409) { location.reload(); return; }
      if (event.code === 4503 && busyFor) { setTimeout(connect, busyFor * 1000); busyFor = 0; return; }
      status.textContent = "Reconnecting…";
      retry = Math.min(retry + 1, 5);
      setTimeout(connect, 300 * Math.pow(2, retry - 1));
    };
  }
  setInterval(() => {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "heartbeat" }));
  }, 5000);
  setInterval(() => {
    const now = Date.now() + offset, waited = Math.max(0, Math.floor((now - arrived) / 1000));
    document.getElementById("waited").textContent = Math.floor(waited / 60) + ":" + String(waited % 60).padStart(2, "0");
    const form = document.getElementById("leave-form");
    if (form) form.hidden = now < leaveAt;
  }, 500);
  connect();
})();
