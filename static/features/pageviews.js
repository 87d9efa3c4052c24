(function () {
  "use strict";
  var texts = JSON.parse(document.getElementById("script-texts").textContent);
  fetch("/features/pageview", {
    method: "POST", credentials: "same-origin",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify({path: location.pathname})
  }).then(function (r) { return r.ok ? r.json() : null; }).then(function (data) {
    var tools = document.getElementById("reader-tools");
    if (!data || !tools) return;
    var note = document.createElement("p");
    note.className = "page-stats";
    note.id = "page-views";
    note.textContent = texts[data.views === 1 ? "pageviews.one" : "pageviews.other"].replace("{count}", new Intl.NumberFormat(document.documentElement.lang).format(data.views));
    tools.appendChild(note);
  });
})();
