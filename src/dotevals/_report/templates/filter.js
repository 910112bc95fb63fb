// The rows table's filter. The page address can set it: report.html#errored,
// #changed, #evaluation=NAME, combined with "&".
(function () {
  var rows = document.querySelectorAll("#rows-table tbody tr");
  var evaluation = document.getElementById("filter-evaluation");
  var errored = document.getElementById("filter-errored");
  var changed = document.getElementById("filter-changed");
  var shown = document.getElementById("rows-shown");

  function apply() {
    var count = 0;
    rows.forEach(function (row) {
      var visible =
        (!evaluation.value || row.dataset.evaluation === evaluation.value) &&
        (!errored.checked || row.dataset.errored === "1") &&
        (!changed || !changed.checked || row.dataset.changed === "1");
      row.hidden = !visible;
      if (visible) count += 1;
    });
    shown.textContent = String(count);
  }

  function fromAddress() {
    var params = new URLSearchParams(window.location.hash.slice(1));
    var name = params.get("evaluation");
    evaluation.value = name !== null ? name : "";
    if (evaluation.selectedIndex < 0) evaluation.value = "";
    errored.checked = params.has("errored");
    if (changed) changed.checked = params.has("changed");
    apply();
  }

  [evaluation, errored, changed].forEach(function (control) {
    if (control) control.addEventListener("change", apply);
  });
  window.addEventListener("hashchange", fromAddress);
  fromAddress();
})();
