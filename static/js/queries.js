// Marks the fields of a CRF that have an open query (named by the queries card's
// data-query-fields), with a link to the query's thread on the same page.
(function () {
  "use strict";
  var card = document.querySelector("[data-query-fields]");
  if (!card) return;
  card.querySelectorAll(".query-block[data-field]").forEach(function (block) {
    var name = block.getAttribute("data-field");
    var holder = document.getElementById("div_id_" + name);
    if (!holder || holder.querySelector(".query-mark")) return;
    holder.classList.add("query-open");
    var mark = document.createElement("a");
    mark.className = "badge text-bg-warning query-mark ms-1";
    mark.href = "#" + block.id;
    mark.textContent = card.getAttribute("data-mark-label") || "?";
    // A grid row holds two fields (the mRSS's right and left): the mark names its side.
    var side = holder.getAttribute("data-query-side");
    if (side) mark.textContent += " · " + side;
    var label = holder.querySelector("label");
    (label || holder).appendChild(mark);
  });
})();

// "Correct on this form": the reason for change names the query ("Query #12: "), so that
// saving the form answers it; the queried field (or the first one) takes the focus.
(function () {
  "use strict";
  document.querySelectorAll(".query-correct[data-reason]").forEach(function (button) {
    button.addEventListener("click", function () {
      var reason = document.getElementById("id_reason");
      if (reason) {
        var prefix = button.getAttribute("data-reason");
        if (reason.value.indexOf(prefix) !== 0) reason.value = prefix + reason.value;
      }
      var name = button.getAttribute("data-field");
      var field = (name && document.getElementById("id_" + name)) ||
        document.querySelector("form[data-crf] input:not([type=hidden]), form[data-crf] select");
      if (field) field.focus();
    });
  });
})();
