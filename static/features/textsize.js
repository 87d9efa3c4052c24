(function () {
  "use strict";
  var sizes = ["small", "normal", "large", "larger"];
  var tools = document.getElementById("reader-tools");
  if (!tools) return;
  var texts = JSON.parse(document.getElementById("script-texts").textContent);
  function step(delta) {
    var now = sizes.indexOf(document.documentElement.dataset.textSize || "normal");
    var next = sizes[Math.max(0, Math.min(sizes.length - 1, now + delta))];
    document.documentElement.dataset.textSize = next;
    fetch("/features/text-size", {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({size: next})
    });
  }
  [["A\u2212", texts["textsize.smaller"], -1], ["A+", texts["textsize.larger"], 1]].forEach(function (spec) {
    var button = document.createElement("button");
    button.type = "button";
    button.textContent = spec[0];
    button.setAttribute("aria-label", spec[1]);
    button.addEventListener("click", function () { step(spec[2]); });
    tools.appendChild(button);
  });
})();
