(function () {
  "use strict";
  var root = document.documentElement;
  root.classList.add("js");
  var table = document.getElementById("features");
  if (!table) return;
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var grid = document.getElementById("cards");
  var cards = {};
  rows.forEach(function (r) {
    r.searchText = r.cells[0].textContent.toLowerCase();
    cards[r.dataset.i] = document.getElementById("f" + r.dataset.i);
  });
  var filter = document.getElementById("filter");
  var only = document.getElementById("drifted-only");
  var shown = document.getElementById("shown");
  document.getElementById("controls").hidden = false;
  function apply() {
    var text = filter.value.trim().toLowerCase();
    var n = 0;
    rows.forEach(function (r) {
      var show = (!only.checked || r.dataset.drift === "1") &&
        (!text || r.searchText.indexOf(text) >= 0);
      r.hidden = !show;
      var card = cards[r.dataset.i];
      if (card) card.hidden = !show;
      if (show) n++;
    });
    shown.textContent = n + " of " + rows.length + " features shown";
  }
  function key(row, column) {
    var cell = row.cells[column];
    var v = cell.dataset.v;
    return v !== undefined ? parseFloat(v) : cell.textContent.toLowerCase();
  }
  var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
  headers.forEach(function (th, column) {
    th.tabIndex = 0;
    function sort() {
      var descending = th.getAttribute("aria-sort") !== "descending";
      if (th.dataset.first === "asc") descending = th.getAttribute("aria-sort") === "ascending";
      headers.forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", descending ? "descending" : "ascending");
      var sign = descending ? -1 : 1;
      rows.sort(function (a, b) {
        var x = key(a, column), y = key(b, column);
        var c = typeof x === "number" ? x - y : x < y ? -1 : x > y ? 1 : 0;
        return c * sign || a.dataset.i - b.dataset.i;
      });
      rows.forEach(function (r) {
        body.appendChild(r);
        var card = cards[r.dataset.i];
        if (card && grid) grid.appendChild(card);
      });
    }
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); }
    });
  });
  filter.addEventListener("input", apply);
  only.addEventListener("change", apply);
  apply();
})();
