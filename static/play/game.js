// Live MultiRef page (speaker or listener). The server is authoritative: every message it sends
// is the whole state for this player, so a reload or a reconnect simply redraws.
(function () {
  "use strict";
  const root = document.getElementById("game");
  const role = root.dataset.role;
  const $ = (id) => document.getElementById(id);
  let socket = null, state = null, offset = 0, retry = 0, closedForGood = false;
  // The listener's clicks show at once (pendingDraft); the server echoes each toggle. An echo of
  // an earlier toggle must not undo later clicks, so the local draft stays until every toggle
  // sent has been echoed (or the server says otherwise: a new state, an error).
  let pendingDraft = null, togglesInFlight = 0;

  function wsUrl() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    return scheme + location.host + root.dataset.ws;
  }

  function connect() {
    $("conn").textContent = "connecting…";
    socket = new WebSocket(wsUrl());
    socket.onopen = () => { retry = 0; $("conn").textContent = "connected"; $("conn").className = "play-conn ok"; };
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "state") render(message);
      else if (message.type === "draft") applyDraft(message);
      else if (message.type === "error") { togglesInFlight = 0; pendingDraft = null; showError(message.message); }
      else if (message.type === "refused") { closedForGood = true; $("conn").textContent = message.message; }
    };
    socket.onclose = (event) => {
      if (closedForGood) { $("conn").className = "play-conn bad"; return; }
      $("conn").textContent = "reconnecting…"; $("conn").className = "play-conn bad";
      if (event.code === 4403) { closedForGood = true; $("conn").textContent = "not your game"; return; }
      retry = Math.min(retry + 1, 6);
      setTimeout(connect, 250 * Math.pow(2, retry - 1));
    };
  }

  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN) { socket.send(JSON.stringify(message)); return true; }
    showError("Connection lost; reconnecting…");
    return false;
  }

  function showError(text) { $("error").textContent = text; setTimeout(() => { if ($("error").textContent === text) $("error").textContent = ""; }, 4000); }

  function myTurn() {
    return state && state.status === "playing" && state.phase === role;
  }

  function render(next) {
    if (state && next.version < state.version) return;
    state = next;
    offset = state.server_ms - Date.now();
    pendingDraft = null;
    togglesInFlight = 0;
    $("turn-no").textContent = Math.min(state.turn + 1, state.turn_limit);
    $("turn-limit").textContent = state.turn_limit;
    renderGrid();
    renderHistory();
    if (role === "speaker") {
      const enabled = myTurn();
      $("utterance").disabled = !enabled; $("send").disabled = !enabled;
      $("utterance").maxLength = state.max_chars;
      if (enabled) $("utterance").focus();
    } else {
      $("submit").disabled = !myTurn();
      $("current").textContent = state.status === "ended" ? "The game is over."
        : state.phase === "listener" ? "“" + state.utterance + "”" : "Waiting for your partner's message…";
    }
    const notice = $("notice");
    if (state.warnings > 0 && state.status === "playing") {
      notice.hidden = false;
      notice.textContent = "Warning: you missed a turn. If you miss another one the game ends without pay.";
    } else notice.hidden = true;
    if (state.status === "ended") renderEnd();
    tick();
  }

  function applyDraft(message) {
    if (!state || message.version <= state.version) return;
    state.version = message.version;
    state.draft = message.draft;
    togglesInFlight = Math.max(0, togglesInFlight - 1);
    if (togglesInFlight === 0) pendingDraft = null;
    renderGrid();
  }

  function selectedSet() {
    if (role === "listener" && state.phase === "listener") return new Set(pendingDraft || state.draft);
    return new Set(state.selection);
  }

  // The grid's buttons are made once per game and then only restyled: a message that arrives
  // while the player clicks must never swap the element under the pointer (a click whose
  // mousedown and mouseup land on different elements is lost) nor reflow the page while the new
  // images load.
  let cells = null;

  function buildGrid() {
    const grid = $("grid");
    grid.replaceChildren();
    cells = new Map();
    for (const image of state.images) {
      const cell = document.createElement("button");
      cell.type = "button";
      cell.className = "tangram";
      cell.dataset.tangram = image.id;
      const img = document.createElement("img");
      img.src = image.url; img.alt = image.letter || ""; img.draggable = false;
      cell.appendChild(img);
      if (image.letter) { const l = document.createElement("span"); l.className = "letter"; l.textContent = image.letter; cell.appendChild(l); }
      if (role === "listener") cell.addEventListener("click", () => toggle(image.id));
      grid.appendChild(cell);
      cells.set(image.id, cell);
    }
  }

  function renderGrid() {
    if (!cells || cells.size !== state.images.length || state.images.some((image) => !cells.has(image.id))) buildGrid();
    const selected = selectedSet();
    const showResult = role === "speaker" && state.history.some((t) => t.selection !== undefined);
    for (const image of state.images) {
      const cell = cells.get(image.id);
      const isSelected = selected.has(image.id);
      cell.classList.toggle("target", Boolean(image.target));
      cell.classList.toggle("selected", isSelected);
      cell.classList.toggle("correct", isSelected && showResult && Boolean(image.target));
      cell.classList.toggle("wrong", isSelected && showResult && !image.target);
      cell.disabled = role === "listener" ? !myTurn() : true;
    }
  }

  function toggle(id) {
    if (!myTurn()) return;
    const draft = new Set(pendingDraft || state.draft);
    if (draft.has(id)) draft.delete(id); else draft.add(id);
    if (send({ type: "toggle", tangram: id })) { pendingDraft = Array.from(draft); togglesInFlight += 1; renderGrid(); }
  }

  function renderHistory() {
    const list = $("history");
    list.replaceChildren();
    state.history.forEach((turn, index) => {
      if (!turn.utterance) return;
      const item = document.createElement("li");
      const number = document.createElement("span");
      number.className = "turn-no";
      number.textContent = index + 1;
      const text = document.createElement("span");
      text.className = "utterance";
      text.textContent = turn.utterance;
      item.append(number, text);
      if (turn.reason === "model_timeout") item.title = "no answer in time";
      list.appendChild(item);
    });
  }

  function renderEnd() {
    $("end").hidden = false;
    const titles = { successful: "Success!", unsuccessful: "Game over", idle: "The game ended" };
    $("end-title").textContent = titles[state.outcome] || "The game ended";
    const reasons = {
      "all targets selected": "All the target images were selected.",
      "turn limit reached": "The turn limit was reached before all targets were selected.",
      "speaker idled": role === "speaker" ? "You did not send a message in time." : "Your partner did not send a message in time.",
      "listener idled": role === "listener" ? "You did not submit in time." : "Your partner did not submit in time.",
    };
    $("end-text").textContent = reasons[state.end_reason] || state.end_reason;
    $("end-pay").textContent = "You earned " + root.dataset.currency + (state.earned_total || "0.00") + " for this game.";
    $("timer-box").hidden = true;
    document.querySelector(".play-turn").textContent = "The game is over";
    closedForGood = true;
  }

  function tick() {
    if (!state || state.status !== "playing" || !state.deadline_ms) { $("timer").textContent = "–"; return; }
    const left = Math.max(0, Math.ceil((state.deadline_ms - (Date.now() + offset)) / 1000));
    $("timer").textContent = left + " s";
    $("timer-label").textContent = state.phase === role ? "Your turn:" : "Partner's turn:";
    $("timer-box").classList.toggle("urgent", left <= 5 && state.phase === role);
  }
  setInterval(tick, 250);

  if (role === "speaker") {
    $("say").addEventListener("submit", (event) => {
      event.preventDefault();
      const text = $("utterance").value.trim();
      if (!text || !myTurn()) return;
      if (send({ type: "utterance", text })) { $("utterance").value = ""; $("utterance").disabled = true; $("send").disabled = true; }
    });
  } else {
    $("submit").addEventListener("click", () => {
      if (!myTurn()) return;
      if (send({ type: "submit", selection: Array.from(selectedSet()) })) $("submit").disabled = true;
    });
  }
  document.addEventListener("visibilitychange", () => { if (!document.hidden) send({ type: "sync" }); });
  connect();
})();
