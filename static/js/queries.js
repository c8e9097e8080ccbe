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
