(function () {
  "use strict";
  var texts = JSON.parse(document.getElementById("script-texts").textContent);
  function report() {
    var nav = performance.getEntriesByType("navigation")[0];
    if (!nav) return;
      var figures = {
      path: location.pathname,
      ttfb: Math.round(nav.responseStart),
      domContentLoaded: Math.round(nav.domContentLoadedEventEnd),
      load: Math.round(nav.loadEventEnd)
    };
    fetch("/features/timing", {
      method: "POST", credentials: "same-origin", keepalive: true,
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify(figures)
    }).then(function (r) {
      if (!r.ok) return;
      var note = document.createElement("p");
      note.className = "page-stats";
      note.id = "page-timing";
      note.textContent = texts["timing.loaded"].replace("{ms}", new Intl.NumberFormat(document.documentElement.lang).format(figures.load));
      document.querySelector(".site-footer").appendChild(note);
    });
  }
  if (document.readyState === "complete") setTimeout(report, 0);
  else addEventListener("load", function () { setTimeout(report, 0); });
})();
