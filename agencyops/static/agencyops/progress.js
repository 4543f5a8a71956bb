// Live progress bars: each [data-progress-url] element is polled until its run finishes.
// Without JavaScript the page still works; it refreshes itself while a run is active.
(function () {
  function human(n) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + " " + units[i];
  }
  function poll(el) {
    fetch(el.dataset.progressUrl, { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        var bar = el.querySelector("progress");
        bar.value = data.percent;
        el.querySelector(".progress-text").textContent =
          data.percent + "% · " + human(data.bytes_done) + " of " + human(data.bytes_total);
        var status = el.closest("tr").querySelector(".run-status");
        if (status) { status.textContent = data.status_display; status.className = "badge run-status " + data.status; }
        if (data.status === "pending" || data.status === "running") {
          setTimeout(function () { poll(el); }, 1000);
        } else {
          el.setAttribute("data-done", data.status);
          setTimeout(function () { window.location.reload(); }, 800);
        }
      })
      .catch(function () { setTimeout(function () { poll(el); }, 3000); });
  }
  document.querySelectorAll("[data-progress-url]").forEach(poll);
})();
