// The batch form offers the rounds of the chosen study and the systems of the chosen round
// (from the JSON the page embeds); the server checks the choice again on submit.
(function () {
  "use strict";
  const data = document.getElementById("round-systems");
  const study = document.getElementById("field-study");
  const round = document.getElementById("field-round");
  const system = document.getElementById("field-system");
  if (!data || !study || !round || !system) return;
  const tree = JSON.parse(data.textContent);

  function fill(select, values, label) {
    const keep = select.value;
    select.replaceChildren(...values.map((value) => new Option(label(value), value)));
    if (values.includes(keep)) select.value = keep;
  }

  function update() {
    const rounds = tree[study.value] || {};
    fill(round, Object.keys(rounds), (index) => `round ${index}`);
    fill(system, rounds[round.value] || [], (name) => name);
  }

  study.addEventListener("change", update);
  round.addEventListener("change", update);
})();
