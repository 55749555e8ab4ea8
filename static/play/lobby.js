// Lobby: waits for the server to pair this worker, then opens the game.
(function () {
  "use strict";
  const root = document.getElementById("lobby");
  const offset = Number(root.dataset.server) - Date.now();
  const arrived = Number(root.dataset.arrived), leaveAt = Number(root.dataset.leave);
  const status = document.getElementById("lobby-status");
  let socket = null, retry = 0, done = false;

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + root.dataset.ws);
    socket.onopen = () => { retry = 0; status.textContent = "Waiting for a partner…"; };
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "paired") { done = true; status.textContent = "Partner found! Starting…"; location.assign(message.url); }
    };
    socket.onclose = (event) => {
      if (done) return;
      if (event.code === 4404 || event.code === 4403) { location.reload(); return; }
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
    document.getElementById("leave-form").hidden = now < leaveAt;
  }, 500);
  connect();
})();
