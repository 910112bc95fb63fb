// The rows table's filter. The page address can set it: report.html#errored,
// #changed, #evaluation=NAME, combined with "&". NAME is an evaluation's stored
// name or its short name (eval_math), percent-encoded where needed ("+" is a plus);
// a NAME the page does not have is said, never taken silently as "all".
(function () {
  var rows = document.querySelectorAll("#rows-table tbody tr");
  var evaluation = document.getElementById("filter-evaluation");
  var errored = document.getElementById("filter-errored");
  var changed = document.getElementById("filter-changed");
  var shown = document.getElementById("rows-shown");
  var note = document.getElementById("filter-note");

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

  function decode(text) {
    try {
      return decodeURIComponent(text);
    } catch (error) {
      return text;
    }
  }

  // The address's "KEY=VALUE&KEY" parts, decoded as written: unlike URLSearchParams,
  // a "+" stays a plus, as in eval_qa[gpt+tools].
  function fromHash() {
    var params = {};
    window.location.hash.slice(1).split("&").forEach(function (part) {
      if (!part) return;
      var equals = part.indexOf("=");
      var key = decode(equals < 0 ? part : part.slice(0, equals));
      params[key] = equals < 0 ? "" : decode(part.slice(equals + 1));
    });
    return params;
  }

  // The option NAME selects: its stored name, or a short name only one evaluation has.
  function option(name) {
    var options = Array.prototype.slice.call(evaluation.options, 1);
    var exact = options.filter(function (o) { return o.value === name; });
    if (exact.length) return {value: exact[0].value};
    var short = options.filter(function (o) { return o.dataset.short === name; });
    if (short.length === 1) return {value: short[0].value};
    if (short.length > 1) {
      return {problem: '"' + name + '" names ' + short.length + " evaluations (" +
        short.map(function (o) { return o.value; }).join(", ") + "): give one of them"};
    }
    return {problem: 'no evaluation named "' + name + '" in this report'};
  }

  function fromAddress() {
    var params = fromHash();
    var found = "evaluation" in params ? option(params.evaluation) : {value: ""};
    evaluation.value = found.value || "";
    note.hidden = !found.problem;
    note.textContent = found.problem ? found.problem + "; all evaluations are shown." : "";
    errored.checked = "errored" in params;
    if (changed) changed.checked = "changed" in params;
    apply();
  }

  [evaluation, errored, changed].forEach(function (control) {
    if (control) control.addEventListener("change", function () {
      note.hidden = true;
      apply();
    });
  });
  window.addEventListener("hashchange", fromAddress);
  fromAddress();
})();
