// The language switch in the menu: choosing a language submits its form (without script,
// the <noscript> button does). Loaded from a file: the pages run under a CSP.
(function () {
  "use strict";
  var form = document.getElementById("language-form");
  if (!form) return;
  var select = form.querySelector("select[name=language]");
  if (select) select.addEventListener("change", function () { form.submit(); });
})();
