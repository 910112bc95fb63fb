"""Plain-text tables of evaluation results, for the terminal and the command line."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dotevals.runners import EvaluationOutcome


MAX_CELL = 80  # longer table cells are cut; --format json prints them whole


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[int] = ()
) -> str:
    """Rows as plain text columns under a header; columns in ``right`` are right-aligned."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]

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
            rows.append([outcome.name, None, None, None, why, None, None])
            continue
        counts = [summary.rows, outcome.new_rows, summary.errors]
        if outcome.error is not None:
            why = (
                "interrupted" if outcome.interrupted else f"stopped: {type(outcome.error).__name__}"
            )
            rows.append([outcome.name, *counts, why, None, None])
            counts = ["", "", ""]
        metrics = [(s, m, v) for s, values in summary.summary.items() for m, v in values.items()]
        if not metrics and counts[0] == "":
            continue  # stopped before any score: its line above says so
        for score, metric, value in metrics or [(None, None, None)]:
            rows.append([outcome.name if counts[0] != "" else "", *counts, score, metric, value])
            counts = ["", "", ""]
    headers = ["evaluation", "rows", "new", "errors", "score", "metric", "value"]
    return format_table(headers, rows, right=(1, 2, 3, 6)).splitlines()
