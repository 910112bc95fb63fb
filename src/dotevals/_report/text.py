"""Plain-text tables of evaluation results, for the terminal and the command line."""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dotevals._report.format import (
    ELLIPSIS,
    number,
    printable,
    seconds,
    short_labels,
    shorten,
    shorten_left,
    signed,
    usd,
)
from dotevals.storage.naming import storage_option

if TYPE_CHECKING:
    from dotevals._declare.gates import GateCheck
    from dotevals.compare import EvaluationComparison, ScoreComparison
    from dotevals.intervals import Estimate
    from dotevals.llm.context import CallTally
    from dotevals.runners import EvaluationOutcome


MAX_CELL = 80  # longer table cells are cut; --format json prints them whole
#: Error messages the summary names for each exception type of an evaluation's errors.
TOP_MESSAGES = 3
#: Exception types the summary names for each evaluation; the others count together.
TOP_TYPES = 5
#: The narrowest a column gives way to: what remains of a cut cell still reads.
MIN_COLUMN = 10


@dataclass(frozen=True)
class Fit:
    """A column that gives way when a table is wider than its ``width``: cut down to
    ``minimum`` characters (never below its header), its cells cut at their end.

    A column of evaluation names (``label``) first gives each its short name
    (:func:`~dotevals._report.format.short_labels`); cut, a ``FILE::NAME`` keeps
    its end, another name its start and its end."""

    column: int
    minimum: int = MIN_COLUMN
    label: bool = False


def format_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    right: Sequence[int] = (),
    *,
    width: int | None = None,
    fit: Sequence[Fit] = (),
) -> str:
    """Rows as plain text columns under a header; columns in ``right`` are right-aligned.

    With a ``width`` (the terminal's), a table wider than it first gives its labels
    their short names and puts one space between columns rather than two; then the
    columns of ``fit`` give way, the widest first, cells cut with an ellipsis, until
    the table fits or they are at their minimum.
    """
    cells = [[_cell(v) for v in row] for row in rows]
    widths = column_widths(headers, cells)
    gap = 2
    if width and table_width(widths) > width:
        for rule in fit:
            if rule.label:
                short = short_labels(row[rule.column] for row in cells)
                for row in cells:
                    row[rule.column] = short[row[rule.column]]
        widths = column_widths(headers, cells)
        if table_width(widths) > width:
            gap = 1
    excess = table_width(widths, gap) - width if width else 0
    floors = {rule.column: max(rule.minimum, len(headers[rule.column])) for rule in fit}
    while excess > 0:  # the widest column that can give way gives one character
        wide = [column for column, floor in floors.items() if widths[column] > floor]
        if not wide:
            break
        widths[max(wide, key=lambda column: widths[column])] -= 1
        excess -= 1
    for rule in fit:
        cut = _cut_label if rule.label else shorten
        for row in cells:
            row[rule.column] = cut(row[rule.column], widths[rule.column])

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if i in right else v.ljust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ]
        return (" " * gap).join(parts).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, cells)])


def _cut_label(label: str, limit: int) -> str:
    """An evaluation's label cut to ``limit``: ``…/eval_x.py::eval_model`` keeps its
    name, ``eval_ari…_long_name`` its start and its end."""
    if len(label) <= limit or "::" in label:
        return shorten_left(label, limit)
    head = (limit - 1) // 2
    return label[:head] + ELLIPSIS + label[len(label) - (limit - 1 - head) :]


def column_widths(headers: Sequence[str], cells: Sequence[Sequence[str]]) -> list[int]:
    return [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]


def table_width(widths: Sequence[int], gap: int = 2) -> int:
    """The width of a table's lines with columns of these widths, ``gap`` spaces apart."""
    return sum(widths) + gap * (len(widths) - 1)


def natural_width(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
    """The width of the table of ``rows`` with no column cut."""
    return table_width(column_widths(headers, [[_cell(v) for v in row] for row in rows]))


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


def saved_by_cache(tally: CallTally) -> str:
    """What the cache hits saved: ``1,234 tokens, $0.0200`` (the cost of the models that
    have a price, see :mod:`dotevals.llm.cost`); empty when the hits report no usage."""
    from dotevals.llm.cost import cost_of

    tokens = sum(u.input_tokens + u.output_tokens for u in tally.saved.values())
    if not tokens:
        return ""
    costs = [cost_of(model, usage) for model, usage in tally.saved.items()]
    known = [usd for usd in costs if usd is not None]
    return f"{tokens:,} tokens" + (f", {usd(sum(known))}" if known else "")


def summary_table(
    outcomes: Sequence[EvaluationOutcome],
    gates: Mapping[str, Sequence[GateCheck]] | None = None,
    width: int | None = None,
) -> list[str]:
    """Each evaluation's rows stored, rows new in this run and errors, then one line per
    metric with its value and 95 % interval; with ``gates`` (checks by item node id),
    a column saying which gated metrics passed. An evaluation that did not run, or that
    stopped, has its line too; :func:`summary_notes` says why.

    With a ``width``, the table fits it: evaluations go by their short names
    (:func:`summary_labels`), then the evaluation and score columns give way."""
    return _SummaryTable(outcomes, gates, width).lines()


def summary_labels(
    outcomes: Sequence[EvaluationOutcome],
    gates: Mapping[str, Sequence[GateCheck]] | None = None,
    width: int | None = None,
) -> dict[str, str]:
    """The label the summary gives each evaluation, by its stored name: the stored name
    itself (``FILE::NAME``), or a shorter one where the table would not fit ``width``."""
    return _SummaryTable(outcomes, gates, width).labels


class _SummaryTable:
    HEADERS = ["evaluation", "rows", "new", "errors", "score", "metric", "value", "95% interval"]
    RIGHT = (1, 2, 3, 6)
    #: The evaluation's label gives way first, keeping its name; then the score's.
    FIT = (Fit(0, label=True), Fit(4), Fit(5))
    #: With repeats: the epochs of each row and the reducer of each metric's line.
    REPEATS = [
        "evaluation",
        "rows",
        "epochs",
        "new",
        "errors",
        "score",
        "reducer",
        "metric",
        "value",
        "95% interval",
    ]

    def __init__(
        self,
        outcomes: Sequence[EvaluationOutcome],
        gates: Mapping[str, Sequence[GateCheck]] | None,
        width: int | None,
    ):
        self.outcomes = outcomes
        self.gates = gates
        self.width = width
        self.repeats = any(o.summary is not None and o.summary.reduced for o in outcomes)
        self.headers = (self.REPEATS if self.repeats else self.HEADERS) + (
            ["gate"] if gates else []
        )
        self.labels = {o.label: o.label for o in outcomes}
        if width and natural_width(self.headers, self._rows()) > width:
            self.labels = short_labels(o.label for o in outcomes)

    def lines(self) -> list[str]:
        right: tuple[int, ...] = self.RIGHT
        fit: tuple[Fit, ...] = self.FIT
        if self.repeats:
            right, fit = (1, 2, 3, 4, 8), (Fit(0, label=True), Fit(5), Fit(7))
        table = format_table(self.headers, self._rows(), right=right, width=self.width, fit=fit)
        return table.splitlines()

    def _rows(self) -> list[list[Any]]:
        rows: list[list[Any]] = []
        blank = [None] * (len(self.headers) - 1)
        for outcome in self.outcomes:
            label = self.labels[outcome.label]
            summary = outcome.summary
            if outcome.setup_error is not None or summary is None:
                rows.append([label, *blank])  # not run: summary_notes says why
                continue
            checks: dict[tuple[str | None, str | None], GateCheck] = {}
            if self.gates and outcome.item is not None:
                found = self.gates.get(outcome.item.nodeid, ())
                checks = {(c.gate.score, c.metric): c for c in found}
            counts: list[Any] = [label, summary.rows, outcome.new_rows, summary.errors]
            by_reducer = summary.reduced or {"": summary.estimates}
            metrics: list[tuple[str | None, str | None, str | None, Estimate | None]] = [
                (s, r, m, e)
                for r, by_score in by_reducer.items()
                for s, values in by_score.items()
                for m, e in values.items()
            ]
            if self.repeats:
                counts.insert(2, summary.epochs)
            for score, reducer, metric, estimate in metrics or [(None, None, None, None)]:
                named = [score, reducer, metric] if self.repeats else [score, metric]
                row = [*counts, *named, estimate and estimate.value]
                row.append(interval_cell(estimate))
                if self.gates:
                    first = reducer in ("", next(iter(by_reducer)))
                    row.append(gate_cell(checks.get((score, metric)) if first else None))
                rows.append(row)
                counts = [""] * len(counts)
        return rows


def usage_table(
    accounts: Sequence[tuple[str, Mapping[str, Any]]], width: int | None = None
) -> list[str]:
    """One line per evaluation and model: the samples' p50 and p95 seconds, their tokens
    and cost (``-`` without a price); then the total cost, when some model has one.
    Without a token anywhere, the seconds alone. ``accounts`` are (label,
    :func:`~dotevals.storage.reading.accounts`) pairs; nothing when no evaluation has
    a duration or a token."""
    if not any(a["latency"] or a["usage"] for _, a in accounts):
        return []
    with_usage = any(a["usage"] for _, a in accounts)
    rows: list[list[Any]] = []
    for label, account in accounts:
        latency = account["latency"] or {}
        timing = [label, seconds(latency.get("p50")), seconds(latency.get("p95"))]
        if not with_usage:
            rows.append(timing)
            continue
        for model, used in account["usage"].items() or [("-", None)]:
            counts = (
                [used[k] for k in ("input_tokens", "output_tokens")]
                + [used[k] for k in ("cached_input_tokens", "reasoning_tokens")]
                if used
                else [None] * 4
            )
            rows.append([*timing, model or "-", *counts, usd(used["cost"]) if used else None])
            timing = ["", "", ""]
    headers = ["evaluation", "p50", "p95"]
    right: tuple[int, ...] = (1, 2)
    fit: tuple[Fit, ...] = (Fit(0, label=True),)
    if with_usage:
        headers += ["model", "input", "output", "cached", "reasoning", "cost"]
        right, fit = (*right, 4, 5, 6, 7, 8), (*fit, Fit(3))
    table = format_table(headers, rows, right=right, width=width, fit=fit).splitlines()
    priced = [
        a["cost"] for _, a in accounts if any(u["cost"] is not None for u in a["usage"].values())
    ]
    if priced:
        table.append(f"total cost: {usd(sum(priced))}")
    return table


def summary_notes(outcomes: Sequence[EvaluationOutcome], labels: Mapping[str, str]) -> list[str]:
    """What the table's numbers do not say: evaluations that did not run or stopped, and
    the rows that had errored before and ran again (not counted as ``new``)."""
    lines = []
    for outcome in outcomes:
        label = labels.get(outcome.label, outcome.label)
        if outcome.skipped:
            lines.append(f"{label}: skipped")
        elif outcome.setup_error is not None or outcome.summary is None:
            lines.append(f"{label}: not run: see its error above")
        elif outcome.interrupted:
            lines.append(
                f"{label}: interrupted; its stored rows are kept, run the same command "
                "again to resume"
            )
        elif outcome.error is not None:
            lines.append(f"{label}: stopped by {type(outcome.error).__name__}: see its error above")
        elif outcome.budget is not None:
            lines.append(
                f"{label}: stopped at the budget, {outcome.budget}; its stored rows are kept, "
                "run again with a larger budget to resume"
            )
        if outcome.rerun_rows:
            rerun, again = outcome.rerun_rows, outcome.rerun_errors
            rows = "1 errored row" if rerun == 1 else f"{rerun} errored rows"
            lines.append(f"{label}: {rows} ran again (not counted in new): {again} errored again")
    return lines


def show_errors_command(experiment: str, url: str) -> str:
    """The command that lists an experiment's errored rows with their tracebacks."""
    return f"dotevals show {shlex.quote(experiment)} --errors{storage_option(url)}"


def rows_failed_report(outcome: EvaluationOutcome, show_errors: str) -> str:
    """Why an evaluation failed on its errored rows: how many of its stored rows errored,
    against which bound, the first error's traceback (or message) and where to see
    the others."""
    summary = outcome.summary
    assert summary is not None
    errors, rows = summary.errors, summary.rows
    bound = outcome.fail_on_error
    if bound is None:
        what = "the 1 stored row errored" if rows == 1 else f"all {rows} stored rows errored"
    elif bound.count == 0:
        what = f"{errors} of {rows} stored rows errored, and {bound.describe()} allows none"
    else:
        what = f"{errors} of {rows} stored rows errored, more than {bound.describe()} allows"
    first = outcome.row_errors.first or next((r for r in summary.records if r.failed), None)
    detail = ""
    if first is not None:
        text = first.traceback or first.error or first.result.error or ""
        detail = f"; the first (row {first.item_id}):\n\n{printable(text.rstrip())}"
    label = printable(outcome.label)
    return f"{label}: {what}{detail}\n\nEvery error, with its traceback: {show_errors}"


def error_summary(
    outcomes: Sequence[EvaluationOutcome],
    show_errors: str,
    labels: Mapping[str, str] | None = None,
    width: int | None = None,
) -> list[str]:
    """For each evaluation whose rows errored this time, its errors by exception type,
    the most frequent first, each with its most frequent messages (cut to ``width``)."""
    lines: list[str] = []
    for outcome in outcomes:
        errors = outcome.row_errors
        if not errors.count:
            continue
        label = printable((labels or {}).get(outcome.label, outcome.label))
        lines.append(f"{label}: {errors.count} of {outcome.ran_rows} rows run this time errored")
        kinds = errors.by_type()
        for kind, count, messages in kinds[:TOP_TYPES]:
            if len(messages) == 1 and messages[0][1] == count:
                lines.append(_count_line(count, messages[0][0], 2, width))
                continue
            lines.append(_count_line(count, kind, 2, width))
            shown = messages[:TOP_MESSAGES]
            lines.extend(_count_line(n, message, 10, width) for message, n in shown)
            others = count - sum(n for _, n in shown)
            if others:
                lines.append(_count_line(others, f"(other {kind} messages)", 10, width))
        others = errors.count - sum(count for _, count, _ in kinds[:TOP_TYPES])
        if others:
            lines.append(_count_line(others, "(other error types)", 2, width))
    if lines:
        lead = "every error, with its traceback:"
        if width and len(lead) + 1 + len(show_errors) > width:  # a command is never cut
            lines.extend([lead, f"  {show_errors}"])
        else:
            lines.append(f"{lead} {show_errors}")
    return lines


def _count_line(count: int, text: str, indent: int, width: int | None) -> str:
    """``   12  text``: a count right-aligned in 6 characters after ``indent`` spaces,
    the text cut to fit ``width``."""
    start = f"{' ' * indent}{count:>6}  "
    cell = _cell(text)
    if width:
        cell = shorten(cell, max(MIN_COLUMN, width - len(start)))
    return start + cell


def comparison_table(comparisons: Sequence[EvaluationComparison], width: int | None = None) -> str:
    """One line per evaluation, score and metric: A, B, B - A with its interval, the
    paired rows and how many rows went right to wrong and wrong to right. A score with
    no metric to compare has one line without them (the notes say why).

    ``B - A`` is over the rows both experiments ran; where A or B also has rows the
    other lacks it is marked ``*`` (:func:`comparison_notes` says so). With a
    ``width`` the table fits it: too wide, it becomes two tables, the values and
    then the rows, and their evaluation and score columns give way."""
    values: list[list[Any]] = []
    counts: list[list[Any]] = []
    for c in comparisons:
        for s in c.scores:
            changes = [c.paired_rows, len(s.regressed), len(s.improved)]
            if not s.metrics:
                values.append([c.name, s.score, None, None, None, None, None])
                counts.append(changes)
            for m in s.metrics:
                values.append(
                    [c.name, s.score, m.metric, m.a.value, m.b.value]
                    + [_difference_cell(c, m.difference), interval_cell(m.difference)]
                )
                counts.append(changes)
    headers = ["evaluation", "score", "metric", "A", "B", "B - A", "95% interval"]
    count_headers = ["paired rows", "right->wrong", "wrong->right"]
    whole = [v + n for v, n in zip(values, counts, strict=True)]
    fit = (Fit(0, label=True), Fit(1), Fit(2))
    if not width or natural_width(headers + count_headers, whole) <= width:
        return format_table(headers + count_headers, whole, right=(3, 4, 5, 7, 8, 9))
    rows = [
        [c.name, s.score, c.paired_rows, len(s.regressed), len(s.improved)]
        for c in comparisons
        for s in c.scores
    ]
    return "\n\n".join(
        [
            format_table(headers, values, right=(3, 4, 5), width=width, fit=fit),
            format_table(
                ["evaluation", "score", *count_headers], rows, (2, 3, 4), width=width, fit=fit
            ),
        ]
    )


def _difference_cell(comparison: EvaluationComparison, difference: Estimate) -> str:
    """``+0.0200``, and ``+0.0200*`` where B - A is not over the same rows as A and B."""
    mark = "*" if comparison.only_in_a or comparison.only_in_b else ""
    return signed(difference.value) + mark


def comparison_notes(
    comparisons: Sequence[EvaluationComparison], width: int | None = None
) -> list[str]:
    """Per evaluation: rows one side alone ran, inputs that differ, scores one side lacks;
    what a ``*`` on ``B - A`` means. Evaluations go by their short names where their
    stored names would make a line longer than ``width``."""
    names = {c.name: c.name for c in comparisons}
    if width and any(len(name) + 50 > width for name in names):
        names = short_labels(names)
    lines = []
    for c in comparisons:
        line = f"{printable(names[c.name])}: {c.paired_rows} rows in both; only in A: "
        line += f"{c.only_in_a}, "
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
    if any((c.only_in_a or c.only_in_b) and c.scores for c in comparisons):
        lines.append(
            "* B - A is over the rows both ran (paired rows), while A and B are each over "
            "all of their own rows: it may differ from B minus A"
        )
    return lines


def changed_rows_table(score: ScoreComparison, width: int | None = None) -> str:
    """The rows whose ``score`` changed, right to wrong first (fit to ``width``)."""
    changes = [("right->wrong", c) for c in score.regressed]
    changes += [("wrong->right", c) for c in score.improved]
    rows = [
        [c.item_id, change, json.dumps(c.dataset_row, ensure_ascii=False, default=str)]
        + [c.value_a, c.value_b]
        for change, c in changes
    ]
    headers = ["item_id", "change", "dataset_row", "A", "B"]
    fit = (Fit(2, minimum=20), Fit(3), Fit(4))
    return format_table(headers, rows, right=[0], width=width, fit=fit)
