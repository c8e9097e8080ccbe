// The export job page: its <progress> bar follows the job by polling the progress
// endpoint ({status, written, total, percent}) every second while it is queued or running,
// then reloads the page once it ends, so the server shows the download link or the error.
// The page itself starts from the job's current state: a reload loses nothing.
// Loaded from a file: no inline script (the coming Content-Security-Policy).
(function () {
  var card = document.querySelector("[data-progress-url]");
  if (!card) return;
  var bar = card.querySelector("progress");
  var text = card.querySelector("[data-template-rows]");
  var url = card.getAttribute("data-progress-url");
  var status = card.getAttribute("data-status");
  if (status !== "queued" && status !== "running") return;

  function show(state) {
    bar.value = state.percent;
    bar.textContent = state.percent + " %";
    card.setAttribute("data-status", state.status);
    if (state.status === "queued") {
      text.textContent = text.getAttribute("data-template-waiting");
    } else {
      text.textContent = text
        .getAttribute("data-template-rows")
        .replace("WRITTEN", String(state.written))
        .replace("TOTAL", String(state.total))
        .replace("PERCENT", state.percent);
    }
  }

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error(response.status);
        return response.json();
      })
      .then(function (state) {
        show(state);
        if (state.status === "queued" || state.status === "running") {
          window.setTimeout(poll, 1000);
        } else {
          window.setTimeout(function () { window.location.reload(); }, 500);
        }
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, 500);
})();
