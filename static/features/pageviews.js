(function () {
  "use strict";
  var token = document.querySelector('meta[name="csrf-token"]');
  fetch("/features/pageview", {
    method: "POST", credentials: "same-origin",
    headers: {"Content-Type": "application/json", "X-CSRFToken": token ? token.content : ""},
    body: JSON.stringify({path: location.pathname})
  }).then(function (r) { return r.ok ? r.json() : null; }).then(function (data) {
    if (!data || !document.querySelector("article.story")) return;
    var note = document.createElement("p");
    note.className = "page-stats";
    note.id = "page-views";
    note.textContent = "Read " + data.views + (data.views === 1 ? " time" : " times") + " on Global Updates.";
    document.querySelector("article.story header").appendChild(note);
  });
})();
