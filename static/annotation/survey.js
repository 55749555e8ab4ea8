// The two-phase turn survey. The server holds the state; this page renders it, sends each
// answer as soon as it is given and renders the state the server answers with. Retrying a
// request is safe: the server records an answer once and acknowledges repeats.
(function () {
  "use strict";
  const root = document.getElementById("survey");
  if (!root) return;
  const token = root.dataset.token;
  const $ = (id) => document.getElementById(id);
  let state = JSON.parse($("survey-state").textContent);
  let working = new Set(); // phase 1: the annotator's selection
  let busy = false;

  function formatAction(before, after) {
    const deselect = [...before].filter((l) => !after.has(l)).sort();
    const select = [...after].filter((l) => !before.has(l)).sort();
    const parts = [];
    if (deselect.length) parts.push("deselect " + deselect.join(" "));
    if (select.length) parts.push("select " + select.join(" "));
    return parts.join(" ");
  }

  function say(text, isError) {
    const box = $("status");
    box.textContent = text || "";
    box.className = isError ? "error" : "";
  }

  async function call(url, body, attempt) {
    if (root.dataset.preview) throw new Error("This is a preview: answers are not saved.");
    attempt = attempt || 0;
    let response;
    try {
      response = await fetch(url, {
        method: body === undefined ? "GET" : "POST",
        headers: { "Content-Type": "application/json", "X-Worker-Token": token },
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "same-origin",
      });
    } catch (networkError) {
      if (attempt >= 6) throw new Error("The connection was lost. Your answers so far are saved; reload the page to continue.");
      say("Connection lost, retrying…", true);
      await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
      return call(url, body, attempt + 1);
    }
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error(data.error ? `${data.field}: ${data.error}` : `HTTP ${response.status}`);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  async function send(url, body) {
    if (busy) return;
    busy = true;
    setDisabled(true);
    try {
      state = await call(url, body);
      say("");
    } catch (error) {
      say(error.message, true);
      try { state = await call(root.dataset.stateUrl); } catch (ignored) { /* keep the old state */ }
    } finally {
      busy = false;
      setDisabled(false);
      render();
    }
  }

  function setDisabled(flag) {
    root.querySelectorAll("button, textarea").forEach((el) => { el.disabled = flag; });
  }

  function renderGrid(game, shown, mode, before) {
    const grid = $("grid");
    grid.replaceChildren();
    grid.classList.toggle("locked", mode !== "edit");
    for (const image of game.images) {
      const cell = document.createElement(mode === "edit" ? "button" : "div");
      if (mode === "edit") cell.type = "button";
      cell.className = "tangram";
      cell.dataset.letter = image.letter;
      if (shown.has(image.letter)) cell.classList.add("selected");
      if (before && before.has(image.letter) !== shown.has(image.letter)) {
        cell.classList.add("changed", shown.has(image.letter) ? "selected" : "deselected");
      }
      cell.setAttribute("aria-pressed", shown.has(image.letter) ? "true" : "false");
      cell.setAttribute("aria-label", "picture " + image.letter);
      const img = document.createElement("img");
      img.src = image.url;
      img.alt = "";
      const letter = document.createElement("span");
      letter.className = "letter";
      letter.textContent = image.letter;
      cell.append(letter, img);
      if (mode === "edit") cell.addEventListener("click", () => toggle(image.letter));
      grid.append(cell);
    }
  }

  function toggle(letter) {
    if (!state.game || !state.game.step || state.game.step.phase !== 1 || busy) return;
    if (working.has(letter)) working.delete(letter); else working.add(letter);
    renderPhase1();
  }

  function renderPhase1() {
    const step = state.game.step;
    const before = new Set(step.selection);
    renderGrid(state.game, working, "edit", null);
    const action = formatAction(before, working);
    $("my-action").textContent = action || "nothing (no change)";
    $("confirm").textContent = action ? "Confirm" : "Confirm: do nothing";
  }

  function renderHistory(game) {
    const list = $("history");
    list.replaceChildren();
    for (const turn of game.history) {
      const li = document.createElement("li");
      li.textContent = `“${turn.utterance}” → listener: ${turn.listener_action || "nothing"}`;
      list.append(li);
    }
    $("history-box").hidden = game.history.length === 0;
  }

  function renderReview(game) {
    const body = $("review-rows");
    body.replaceChildren();
    const labels = Object.fromEntries(state.satisfaction_options.map((o) => [o.value, o.label]));
    for (const turn of game.history) {
      const tr = document.createElement("tr");
      for (const text of [turn.turn + 1, turn.utterance, turn.your_action || "nothing",
        turn.listener_action || "nothing", labels[turn.satisfaction] || "–"]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.append(td);
      }
      body.append(tr);
    }
  }

  function renderFinish() {
    const text = $("finish-text");
    $("complete-now").hidden = true;
    $("code-box").hidden = true;
    $("mturk-form").hidden = true;
    if (state.status === "no_work") {
      text.textContent = "There is no game for you to annotate right now. Please return the task on your platform. Thank you!";
    } else if (state.status === "can_complete") {
      text.textContent = `You annotated ${state.games_done} game(s) and no more are available.`;
      $("complete-now").hidden = false;
    } else if (state.status === "complete") {
      const done = state.completion;
      text.textContent = "Thank you! Your work is complete.";
      if (done.kind === "redirect") {
        $("code").textContent = done.code;
        $("code-link").href = done.url;
        $("code-box").hidden = false;
        setTimeout(() => { window.location.assign(done.url); }, 1500);
      } else if (done.kind === "message") {
        if (done.message) text.textContent = `Thank you! Your work is complete. ${done.message}`;
      } else if (done.kind === "mturk_submit") {
        const form = $("mturk-form");
        form.action = done.action;
        form.elements.assignmentId.value = done.fields.assignmentId;
        form.hidden = false;
        form.submit();
      }
    }
  }

  function render() {
    const game = state.game;
    $("annotate").hidden = state.status !== "annotating";
    $("review").hidden = state.status !== "review";
    $("finish").hidden = !["no_work", "can_complete", "complete"].includes(state.status);
    $("history-box").hidden = !game;
    const gameNo = Math.min(state.games_done + 1, state.games_per_session);
    if (!game || state.status === "complete") {
      $("where").textContent = "";
      $("phase-label").textContent = "";
      renderFinish();
      return;
    }
    renderHistory(game);
    if (state.status === "review") {
      $("where").textContent = `Game ${gameNo} of ${state.games_per_session}`;
      $("phase-label").textContent = "review";
      renderReview(game);
      return;
    }
    const step = game.step;
    $("where").textContent = `Game ${gameNo} of ${state.games_per_session} · turn ${step.turn + 1} of ${game.turn_count}`;
    $("utterance").textContent = step.utterance;
    $("phase1").hidden = step.phase !== 1;
    $("phase2").hidden = step.phase !== 2;
    if (step.phase === 1) {
      $("phase-label").textContent = "1 · what should the listener do?";
      $("instruction").textContent = "Click the pictures the listener should select or deselect (highlighted pictures are selected now), then confirm.";
      if (root.dataset.step !== `${game.id}:${step.turn}:1`) working = new Set(step.selection);
      root.dataset.step = `${game.id}:${step.turn}:1`;
      renderPhase1();
    } else {
      root.dataset.step = `${game.id}:${step.turn}:2`;
      $("phase-label").textContent = "2 · was the speaker satisfied?";
      $("instruction").textContent = "This is what the listener actually selected (changed pictures are marked).";
      renderGrid(game, new Set(step.selection_after), "show", new Set(step.selection));
      const reveal = $("reveal");
      reveal.replaceChildren();
      const same = step.your_action === step.listener_action;
      const verdict = document.createElement("span");
      verdict.className = same ? "same" : "differs";
      verdict.textContent = same ? "Same as yours." : "Different from yours.";
      reveal.append(`You said: ${step.your_action || "nothing"}. The listener did: ${step.listener_action || "nothing"}. `, verdict);
      $("follow-up").textContent = step.follow_up;
      const options = $("options");
      options.replaceChildren();
      for (const option of state.satisfaction_options) {
        const button = document.createElement("button");
        button.type = "button";
        button.dataset.value = option.value;
        const key = document.createElement("kbd");
        key.textContent = option.key;
        button.append(key, option.label);
        button.addEventListener("click", () => answer2(option.value));
        options.append(button);
      }
    }
  }

  function answer1() {
    const step = state.game.step;
    send(root.dataset.answerUrl, {
      assignment: state.game.id, turn: step.turn, phase: 1,
      action: formatAction(new Set(step.selection), working),
    });
  }

  function answer2(value) {
    const step = state.game.step;
    send(root.dataset.answerUrl, { assignment: state.game.id, turn: step.turn, phase: 2, satisfaction: value });
  }

  $("confirm").addEventListener("click", answer1);
  $("reset").addEventListener("click", () => { working = new Set(state.game.step.selection); renderPhase1(); });
  $("submit-game").addEventListener("click", () =>
    send(root.dataset.submitUrl, { assignment: state.game.id, comment: $("comment").value }));
  $("complete-now").addEventListener("click", () => send(root.dataset.completeUrl, {}));

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || busy) return;
    if (event.target instanceof HTMLTextAreaElement) return;
    if (state.status !== "annotating") return;
    const step = state.game.step;
    const key = event.key.toUpperCase();
    if (step.phase === 1) {
      if (state.game.images.some((i) => i.letter === key)) { toggle(key); event.preventDefault(); }
      else if (event.key === "Enter") { answer1(); event.preventDefault(); }
      else if (event.key === "Escape") { working = new Set(step.selection); renderPhase1(); }
    } else {
      const option = state.satisfaction_options.find((o) => o.key === event.key);
      if (option) { answer2(option.value); event.preventDefault(); }
    }
  });

  render();
})();
