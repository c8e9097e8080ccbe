// Conditional fields: an input with data-show-if="other=value" is shown only while the
// field named "other" has that value (the server clears it otherwise).
(function () {
  function wrapperOf(input) {
    return input.closest(".mb-3") || input.closest("[id^=div_]") || input.parentElement;
  }
  function valueOf(form, name) {
    var checked = form.querySelector('[name="' + name + '"]:checked');
    if (checked) return checked.value;
    var field = form.querySelector('[name="' + name + '"]');
    // A radio group or checkbox with nothing ticked has no value (not its first option's).
    if (!field || field.type === "radio" || field.type === "checkbox") return "";
    return field.value;
  }
  function refresh(form) {
    form.querySelectorAll("[data-show-if]").forEach(function (input) {
      var rule = input.getAttribute("data-show-if").split("=");
      wrapperOf(input).hidden = valueOf(form, rule[0]) !== rule[1];
    });
  }
  document.querySelectorAll("form[data-crf]").forEach(function (form) {
    form.addEventListener("change", function () { refresh(form); });
    refresh(form);
  });
})();
