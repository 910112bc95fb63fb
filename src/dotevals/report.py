"""Plain-text tables of evaluation results, for the terminal and the command line."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dotevals.storage import DEFAULT_STORAGE

if TYPE_CHECKING:
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
        text = f"{value:.4f}"
    else:
        text = str(value)
    text = text.replace("\r", "").replace("\n", "\\n")
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 3] + "..."


def summary_table(outcomes: Sequence[EvaluationOutcome]) -> list[str]:
    """Each evaluation's rows stored, rows new in this run and errors, then one line per metric."""
    rows: list[list[Any]] = []
    for outcome in outcomes:
        summary = outcome.summary
        if outcome.setup_error is not None or summary is None:
            why = "skipped" if outcome.skipped else "not run: see the error above"
            rows.append([outcome.label, None, None, None, why, None, None])
            continue
        counts = [summary.rows, outcome.new_rows, summary.errors]
        if outcome.error is not None:
            why = (
                "interrupted" if outcome.interrupted else f"stopped: {type(outcome.error).__name__}"
            )
            rows.append([outcome.label, *counts, why, None, None])
            counts = ["", "", ""]
        metrics = [(s, m, v) for s, values in summary.summary.items() for m, v in values.items()]
        if not metrics and counts[0] == "":
            continue  # stopped before any score: its line above says so
        for score, metric, value in metrics or [(None, None, None)]:
            rows.append([outcome.label if counts[0] != "" else "", *counts, score, metric, value])
            counts = ["", "", ""]
    headers = ["evaluation", "rows", "new", "errors", "score", "metric", "value"]
    return format_table(headers, rows, right=(1, 2, 3, 6)).splitlines()


def storage_option(url: str) -> str:
    """The ``--storage`` option to repeat in a hint, empty for the default storage."""
    return "" if url == DEFAULT_STORAGE else f" --storage {shlex.quote(url)}"


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
        f"{detail.rstrip()}\n\nEvery error, with its traceback: {show_errors}"
    )


def error_summary(outcomes: Sequence[EvaluationOutcome], show_errors: str) -> list[str]:
    """For each evaluation whose rows errored this time, its most frequent error messages."""
    lines: list[str] = []
    for outcome in outcomes:
        errors = outcome.row_errors
        if not errors.count:
            continue
        lines.append(f"{outcome.label}: {errors.count} of {outcome.new_rows} new rows errored")
        shown = errors.messages.most_common(TOP_MESSAGES)
        lines.extend(f"  {count:>6}  {_cell(message)}" for message, count in shown)
        others = errors.count - sum(count for _, count in shown)
        if others:
            lines.append(f"  {others:>6}  (other messages)")
    if lines:
        lines.append(f"every error, with its traceback: {show_errors}")
    return lines
