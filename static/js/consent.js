/* Global Updates consent script. The banner and the preferences page work without it;
   with it, Customize and Cookie settings open the same form in a modal <dialog>, and a
   choice is sent with fetch and applied without leaving the page, or by reloading it when
   scripts must start or stop (each page's policy names the scripts it may run). */
(function () {
  "use strict";
  var texts = JSON.parse(document.getElementById("script-texts").textContent);
  var dialog = null;
  var opener = null;
  var status = document.createElement("p");
  status.className = "visually-hidden";
  status.setAttribute("role", "status");
  document.body.append(status);

  function focusables() {
    return dialog.querySelectorAll("a[href],button,input:not([type=hidden]),[tabindex='0']");
  }

  function keepTabInside(event) {
    if (event.key !== "Tab") return;
    var all = focusables();
    var edge = event.shiftKey ? all[0] : all[all.length - 1];
    if (document.activeElement === edge) {
      event.preventDefault();
      (event.shiftKey ? all[all.length - 1] : all[0]).focus();
    }
  }

  function closed() {
    dialog.remove();
    dialog = null;
    if (opener && opener.isConnected) opener.focus();
    else document.getElementById("content").focus({preventScroll: true});
  }

  function show(html) {
    var preferences = new DOMParser().parseFromString(html, "text/html").querySelector(".preferences");
    var close = document.createElement("button");
    close.type = "button";
    close.className = "dialog-close";
    close.textContent = texts["consent.close"];
    close.addEventListener("click", function () { dialog.close(); });
    dialog = document.createElement("dialog");
    dialog.className = "consent-dialog";
    dialog.setAttribute("aria-labelledby", "preferences-title");
    dialog.append(close, document.adoptNode(preferences));
    dialog.addEventListener("keydown", keepTabInside);
    dialog.addEventListener("close", closed);
    document.body.append(dialog);
    dialog.showModal();
  }

  function open(link) {
    if (link.dataset.loading) return;
    opener = link;
    link.dataset.loading = "1";
    fetch(link.href, {credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r); })
      .then(show)
      .catch(function () { location.href = link.href; })
      .finally(function () { delete link.dataset.loading; });
  }

  function apply(answer) {
    var running = document.querySelectorAll("script[data-category]");
    var stopped = [].some.call(running, function (s) {
      return answer.granted.indexOf(s.dataset.category) < 0 ||
        (s.dataset.service && answer.services.indexOf(s.dataset.service) < 0);
    });
    if (stopped || answer.reload) return location.reload();
    var banner = document.getElementById("consent-banner");
    if (banner) banner.remove();
    if (dialog) dialog.close();
    status.textContent = texts["consent.saved"];
  }

  function send(form, submitter) {
    var data = new FormData(form, submitter);
    var headers = {"Accept": "application/json"};
    if (navigator.globalPrivacyControl === true) headers["X-GPC"] = "1";
    fetch(form.getAttribute("action"), {method: "POST", credentials: "same-origin", headers: headers, body: new URLSearchParams(data)})
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r); })
      .then(apply)
      .catch(function () {
        form.sendNatively = true;
        form.requestSubmit(submitter);
      });
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest('a[href$="/consent"], a[href*="/consent?"]');
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey || document.querySelector(".preferences")) return;
    event.preventDefault();
    open(link);
  });

  /* A category's box ticks or clears all of its services; ticking a service ticks its
     category, which it cannot run without. The server reads the boxes the same way. */
  document.addEventListener("change", function (event) {
    var box = event.target;
    var form = box.form;
    if (!form || !form.classList.contains("preferences-form")) return;
    if (box.dataset.categoryBox) {
      form.querySelectorAll('input[name="services"][data-category="' + box.dataset.categoryBox + '"]').forEach(function (service) {
        service.checked = box.checked;
      });
    } else if (box.name === "services" && box.checked) {
      var category = form.querySelector('input[data-category-box="' + box.dataset.category + '"]');
      if (category) category.checked = true;
    }
  });

  function markExact(form) {
    if (!form.classList.contains("preferences-form") || form.querySelector('input[name="exact_services"]')) return;
    var exact = document.createElement("input");
    exact.type = "hidden";
    exact.name = "exact_services";
    exact.value = "1";
    form.append(exact);
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    markExact(form);
    if (form.sendNatively || !form.closest("#consent-banner,.consent-dialog")) return;
    event.preventDefault();
    send(form, event.submitter);
  });
})();
