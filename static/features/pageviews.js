(function () {
  "use strict";
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
    note.textContent = "Read " + data.views + (data.views === 1 ? " time" : " times") + " on Global Updates.";
    tools.appendChild(note);
  });
})();
