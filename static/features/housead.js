(function () {
  "use strict";
  var slot = document.getElementById("house-ad-slot");
  if (!slot) return;
  var texts = JSON.parse(document.getElementById("script-texts").textContent);
  fetch(texts["housead.url"], {credentials: "same-origin", headers: {"Accept": "application/json"}})
    .then(function (r) { return r.status === 200 ? r.json() : null; })
    .then(function (ad) {
      if (!ad) return;
      var box = document.createElement("div");
      box.className = "house-ad";
      var label = document.createElement("small");
      label.textContent = ad.label;
      var heading = document.createElement("p");
      var link = document.createElement("a");
      link.href = ad.href;
      link.textContent = ad.headline;
      heading.appendChild(link);
      var text = document.createElement("p");
      text.textContent = ad.text;
      box.append(label, heading, text);
      slot.appendChild(box);
    });
})();
