// The stale-save page (409): the form holds the version now saved; each "Use mine" button
// puts back the value the user had typed, "Use all my values" puts back every one. The
// user then checks the form and saves it as usual. Loaded from a file: no inline script.
(function () {
  var form = document.querySelector("form[data-stale-form]");
  if (!form) return;
  function put(name, value) {
    var inputs = form.querySelectorAll('[name="' + CSS.escape(name) + '"]');
    inputs.forEach(function (input) {
      if (input.type === "radio") input.checked = input.value === value;
      else if (input.type === "checkbox") input.checked = value !== "";
      else input.value = value;
    });
    // Conditional fields and live totals follow the change as if it had been typed.
    if (inputs.length) inputs[0].dispatchEvent(new Event("change", { bubbles: true }));
  }
  var buttons = document.querySelectorAll("[data-stale-use]");
  buttons.forEach(function (button) {
    button.addEventListener("click", function () {
      put(button.getAttribute("data-stale-use"), button.getAttribute("data-stale-value"));
      var row = button.closest("tr");
      if (row) row.classList.add("table-success");
    });
  });
  var all = document.querySelector("[data-stale-use-all]");
  if (all) {
    all.addEventListener("click", function () {
      buttons.forEach(function (button) { button.click(); });
    });
  }
})();
