// The console reads without JavaScript; this only makes it livelier.
// [data-poll=URL]: while its content says data-busy="yes", fetch URL every 2 s and swap the HTML in.
(function () {
  "use strict";
  function poll(el) {
    var busy = el.querySelector('[data-busy="yes"]');
    if (!busy) { return; }
    setTimeout(function () {
      fetch(el.getAttribute("data-poll"), {credentials: "same-origin", headers: {"Accept": "text/html"}})
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) { el.innerHTML = html; el.dispatchEvent(new CustomEvent("polled")); poll(el); })
        .catch(function () { setTimeout(function () { poll(el); }, 5000); });
    }, 2000);
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-poll]").forEach(poll);
    // [data-autosubmit]: changing the field submits its form (e.g. the chart's date moves the threshold lines).
    document.querySelectorAll("[data-autosubmit]").forEach(function (el) {
      el.addEventListener("change", function () { if (el.value) { el.form.submit(); } });
    });
  });
})();
