"""Plain-text tables of evaluation results, for the terminal and the command line."""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dotevals._report.format import number, printable, shorten, signed
from dotevals.storage.naming import storage_option

if TYPE_CHECKING:
    from dotevals._declare.gates import GateCheck
    from dotevals.compare import EvaluationComparison, ScoreComparison
    from dotevals.intervals import Estimate
    from dotevals.runners import EvaluationOutcome


MAX_CELL = 80  # longer table cells are cut; --format json prints them whole
#: Error messages the summary names for each evaluation with errored rows.
TOP_MESSAGES = 3


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[int] = ()
) -> str:
    """Rows as plain text columns under a header; columns in ``right`` are right-aligned."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if i in right else v.ljust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, cells)])


def _cell(value: Any) -> str:
    if value is None:
        text = "-"
    elif isinstance(value, float):
        text = number(value)
    else:
        text = str(value)
    return shorten(printable(text.replace("\r", "").replace("\n", "\\n")), MAX_CELL)


def interval_cell(estimate: Estimate | None) -> str | None:
    """``[0.7342, 0.8563]``, or None (shown ``-``) when there is no interval."""
    if estimate is None or estimate.low is None or estimate.high is None:
        return None
    return f"[{number(estimate.low)}, {number(estimate.high)}]"


def gate_cell(check: GateCheck | None) -> str:
    """``>= 0.8 passed`` or ``>= 0.8 FAILED`` for a gated metric, blank for the others."""
    if check is None:
        return ""
    return f">= {check.gate.threshold:g} {'passed' if check.passed else 'FAILED'}"


def model_calls_line(outcomes: Sequence[EvaluationOutcome]) -> str | None:
    """``model cache: 12 hits, 3 misses (80 %); 2 answers were 429`` for the rows run this
    time, or None when none called a model through dotevals' provider."""
    from dotevals.llm.context import CallTally

    tally = CallTally()
    for outcome in outcomes:
        tally.merge(outcome.model_calls)
    if not tally:
        return None
    parts = []
    if tally.calls:
        share = f" ({100 * tally.cache_hits / tally.calls:.0f} %)"
        parts.append(f"model cache: {tally.cache_hits} hits, {tally.cache_misses} misses{share}")
        saved = saved_by_cache(tally)
        if saved:
            parts[-1] += f", saving {saved}"
    if tally.rate_limited:
        parts.append(f"{tally.rate_limited} answers were 429 (rate limited)")
    return "; ".join(parts) or None


def saved_by_cache(tally: Any) -> str:
    """What the cache hits saved, as the summary says it: empty for now.

    The hook for token usage and cost: ``tally.saved_usage`` adds up every numeric field
    of the usage blocks of the hits (``prompt_tokens``, ``completion_tokens``... as the
    server named them); once dotevals reads usage blocks by shape and prices them
    (``dotevals.llm.usage``, ``dotevals.llm.cost``), this returns ``"1,234 tokens, $0.02"``.
    """
    return ""


def summary_table(
    outcomes: Sequence[EvaluationOutcome],
    gates: Mapping[str, Sequence[GateCheck]] | None = None,
) -> list[str]:
    """Each evaluation's rows stored, rows new in this run and errors, then one line per
    metric with its value and 95 % interval; with ``gates`` (checks by item node id),
    a column saying which gated metrics passed."""
    rows: list[list[Any]] = []
    for outcome in outcomes:
        summary = outcome.summary
        checks: dict[tuple[str | None, str | None], GateCheck] = {}
        if gates and outcome.item is not None:
            checks = {(c.gate.score, c.metric): c for c in gates.get(outcome.item.nodeid, ())}
        if outcome.setup_error is not None or summary is None:
            why = "skipped" if outcome.skipped else "not run: see the error above"
            rows.append([outcome.label, None, None, None, why, None, None, None, None])
            continue
        counts: list[int | str] = [summary.rows, outcome.new_rows, summary.errors]
        if outcome.error is not None:
            why = (
                "interrupted" if outcome.interrupted else f"stopped: {type(outcome.error).__name__}"
            )
            rows.append([outcome.label, *counts, why, None, None, None, None])
            counts = ["", "", ""]
        metrics: list[tuple[str | None, str | None, Estimate | None]] = [
            (s, m, e) for s, values in summary.estimates.items() for m, e in values.items()
        ]
        if not metrics and counts[0] == "":
            continue  # stopped before any score: its line above says so
        for score, metric, estimate in metrics or [(None, None, None)]:
            rows.append(
                [outcome.label if counts[0] != "" else "", *counts, score, metric]
                + [estimate and estimate.value, interval_cell(estimate)]
                + [gate_cell(checks.get((score, metric)))]
            )
            counts = ["", "", ""]
    headers = ["evaluation", "rows", "new", "errors", "score", "metric", "value", "95% interval"]
    if gates:
        headers.append("gate")
    else:
        rows = [row[:-1] for row in rows]
    return format_table(headers, rows, right=(1, 2, 3, 6)).splitlines()


def show_errors_command(experiment: str, url: str) -> str:
    """The command that lists an experiment's errored rows with their tracebacks."""
    return f"dotevals show {shlex.quote(experiment)} --errors{storage_option(url)}"


def rows_failed_report(outcome: EvaluationOutcome, show_errors: str) -> str:
    """Why an evaluation whose every new row errored failed: the count, the first
    error's traceback (or message) and where to see the others."""
    errors = outcome.row_errors
    assert errors.first is not None
    first = errors.first
    detail = first.traceback or first.error or first.result.error or ""
    rows = "the 1 row" if errors.count == 1 else f"all {errors.count} rows"
    return (
        f"{outcome.label}: {rows} run this time errored; the first (row {first.item_id}):\n\n"
        f"{printable(detail.rstrip())}\n\nEvery error, with its traceback: {show_errors}"
    )


def error_summary(outcomes: Sequence[EvaluationOutcome], show_errors: str) -> list[str]:
    """For each evaluation whose rows errored this time, its most frequent error messages."""
    lines: list[str] = []
    for outcome in outcomes:
        errors = outcome.row_errors
        if not errors.count:
            continue
        lines.append(
            f"{printable(outcome.label)}: {errors.count} of {outcome.new_rows} new rows errored"
        )
        shown = errors.messages.most_common(TOP_MESSAGES)
        lines.extend(f"  {count:>6}  {_cell(message)}" for message, count in shown)
        others = errors.count - sum(count for _, count in shown)
        if others:
            lines.append(f"  {others:>6}  (other messages)")
    if lines:
        lines.append(f"every error, with its traceback: {show_errors}")
    return lines


def comparison_table(comparisons: Sequence[EvaluationComparison]) -> str:
    """One line per evaluation, score and metric: A, B, B - A with its interval, the
    paired rows and how many rows went right to wrong and wrong to right. A score with
    no metric to compare has one line without them (the notes say why)."""
    rows: list[list[Any]] = []
    for c in comparisons:
        for s in c.scores:
            changes = [c.paired_rows, len(s.regressed), len(s.improved)]
            if not s.metrics:
                rows.append([c.name, s.score, None, None, None, None, None, *changes])
            for m in s.metrics:
                rows.append(
                    [c.name, s.score, m.metric, m.a.value, m.b.value, signed(m.difference.value)]
                    + [interval_cell(m.difference), *changes]
                )
    headers = ["evaluation", "score", "metric", "A", "B", "B - A", "95% interval"]
    headers += ["paired rows", "right->wrong", "wrong->right"]
    return format_table(headers, rows, right=(3, 4, 5, 7, 8, 9))


def comparison_notes(comparisons: Sequence[EvaluationComparison]) -> list[str]:
    """Per evaluation: rows one side alone ran, inputs that differ, scores one side lacks."""
    lines = []
    for c in comparisons:
        line = f"{printable(c.name)}: {c.paired_rows} rows in both; only in A: {c.only_in_a}, "
        line += f"only in B: {c.only_in_b}"
        if c.different_inputs:
            line += f"; {c.different_inputs} rows in both have different inputs"
        lines.append(line)
        for side, scores in (("A", c.scores_only_in_a), ("B", c.scores_only_in_b)):
            if scores:
                lines.append(f"  scores only in {side}: {printable(', '.join(scores))}")
        for s in c.scores:
            for side, metrics in (("A", s.metrics_only_in_a), ("B", s.metrics_only_in_b)):
                if metrics:
                    lines.append(
                        printable(f"  {s.score}: metrics only in {side}: {', '.join(metrics)}")
                    )
            lines.extend(printable(f"  {s.score}: {failure}") for failure in s.metric_errors)
    return lines


def changed_rows_table(score: ScoreComparison) -> str:
    """The rows whose ``score`` changed, right to wrong first."""
    changes = [("right->wrong", c) for c in score.regressed]
    changes += [("wrong->right", c) for c in score.improved]
    rows = [
        [c.item_id, change, json.dumps(c.dataset_row, ensure_ascii=False, default=str)]
        + [c.value_a, c.value_b]
        for change, c in changes
    ]
    return format_table(["item_id", "change", "dataset_row", "A", "B"], rows, right=[0])
