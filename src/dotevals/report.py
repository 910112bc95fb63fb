"""Plain-text tables of evaluation results, for the terminal and the command line."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from dotevals.runners import EvaluationOutcome


def format_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    """Left-aligned columns separated by two spaces, with a rule under the headers."""
    text_rows = [[_cell(value) for value in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in text_rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=False)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=False))  # noqa: E731
    return [line(headers).rstrip(), line(["-" * w for w in widths]).rstrip()] + [
        line(row).rstrip() for row in text_rows
    ]


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def metric_cells(summary: dict[str, dict[str, float]]) -> str:
    """``{"em": {"accuracy": 0.5}}`` -> ``"em.accuracy=0.5"``."""
    return ", ".join(
        f"{score}.{name}={_cell(value)}"
        for score, metrics in summary.items()
        for name, value in metrics.items()
    )


def summary_table(outcomes: Sequence[EvaluationOutcome]) -> list[str]:
    """One line per evaluation: rows stored, new this run, errors, metrics."""
    rows = []
    for outcome in outcomes:
        summary = outcome.summary
        if outcome.setup_error is not None or summary is None:
            rows.append([outcome.name, "-", "-", "-", "not run: see the error above"])
            continue
        metrics = metric_cells(summary.summary)
        if outcome.error is not None:
            metrics = f"stopped: {type(outcome.error).__name__}; {metrics}"
        rows.append([outcome.name, len(summary.records), outcome.new_rows, summary.errors, metrics])
    return format_table(["evaluation", "rows", "new", "errors", "metrics"], rows)
