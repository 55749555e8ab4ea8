// Polls a metric run's progress and reloads the dashboard when the run is over.
(function () {
  const box = document.getElementById("run-progress");
  if (!box) return;
  const bar = box.querySelector("progress");
  const text = box.querySelector(".message");
  const percent = box.querySelector(".percent");
  async function poll() {
    let data;
    try {
      const response = await fetch(box.dataset.url, { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(response.status);
      data = await response.json();
    } catch (error) {
      text.textContent = "could not read the progress (" + error.message + "); retrying";
      setTimeout(poll, 3000);
      return;
    }
    bar.value = data.progress;
    percent.textContent = Math.round(100 * data.progress) + "%";
    text.textContent = data.message;
    box.dataset.status = data.status;
    if (data.status === "done" || data.status === "failed") {
      window.location.assign(data.dashboard);
      return;
    }
    setTimeout(poll, 1000);
  }
  poll();
})();
