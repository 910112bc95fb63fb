"""Paired comparison of two experiments, evaluation by evaluation and score by score.

Rows are matched by their position in the dataset (``item_id``). For each
score and metric both experiments have, :func:`compare_evaluation` gives A's
value and B's (each over all of its own stored rows) and the difference
``B - A`` with a 95 % interval over the rows both ran:

- ``accuracy`` and ``mean`` are means of a per-row number (1/0 for a truthy or
  falsy value, the number itself for ``mean``), so the difference is the mean
  of the per-row differences, with standard error ``s_d/√n`` and the normal
  interval (``"paired normal"``). For a true/false score this is the paired
  (McNemar) setting: only the rows that changed move the difference;
- any other metric gets a paired bootstrap: the same resampled rows on both
  sides, the metric recomputed on each (``"bootstrap"``).

With repeats, each row's values over its epochs are first reduced by the
evaluation's first reducer (``mean`` by default), and the rows' reduced values
are paired. Errored rows count as False, as in every summary. Rows only one side ran are
counted, never silently dropped; so are the metrics only one side has and the
metrics that cannot be computed from a score's values (text under ``mean``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from dotevals.intervals import Estimate, bootstrap
from dotevals.metrics import Metric, Reducer, Share, numeric
from dotevals.models import Record, ScoreTally

__all__ = [
    "RowChange",
    "MetricComparison",
    "ScoreComparison",
    "EvaluationComparison",
    "compare_evaluation",
]

#: Metrics that are the mean of one number per row, and that number.
_PER_ROW: dict[str, Callable[[Any], float | None]] = {
    "accuracy": lambda value: float(value) if type(value) is Share else float(bool(value)),
    "mean": numeric,
}


@dataclass(frozen=True)
class RowChange:
    """A row whose score differs between A and B."""

    item_id: int
    dataset_row: dict[str, Any]
    value_a: Any
    value_b: Any


@dataclass(frozen=True)
class MetricComparison:
    """One metric of one score: A's value, B's, and ``B - A`` over the paired rows."""

    metric: str
    a: Estimate
    b: Estimate
    difference: Estimate


@dataclass(frozen=True)
class ScoreComparison:
    """One score both sides have: its metrics and the rows that changed.

    ``metrics`` are those both sides have (all of one side's when the other's
    every row errored); ``metrics_only_in_a`` and ``metrics_only_in_b`` name the
    others, and ``metric_errors`` says why a metric could not be compared.
    ``regressed`` rows scored lower in B than in A (right to wrong for a
    true/false score), ``improved`` rows higher (wrong to right).
    """

    score: str
    metrics: list[MetricComparison]
    regressed: list[RowChange] = field(default_factory=list)
    improved: list[RowChange] = field(default_factory=list)
    metrics_only_in_a: list[str] = field(default_factory=list)
    metrics_only_in_b: list[str] = field(default_factory=list)
    metric_errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class EvaluationComparison:
    """One evaluation both experiments have.

    ``paired_rows`` rows were stored on both sides; ``only_in_a`` and
    ``only_in_b`` count the rows one side alone stored. ``different_inputs``
    counts paired rows whose dataset row differs (the datasets changed).
    """

    name: str
    paired_rows: int
    only_in_a: int
    only_in_b: int
    different_inputs: int
    scores: list[ScoreComparison]
    scores_only_in_a: list[str]
    scores_only_in_b: list[str]

    def to_dict(self, rows: bool = False) -> dict[str, Any]:
        """JSON-ready data: each score's ``regressed`` and ``improved`` are counts, and
        with ``rows`` its ``regressed_rows`` and ``improved_rows`` are the changed rows."""
        data = asdict(self)
        for score in data["scores"]:
            for side in ("regressed", "improved"):
                changes = score.pop(side)
                score[side] = len(changes)
                if rows:
                    score[f"{side}_rows"] = changes
        return data


def compare_evaluation(
    name: str,
    records_a: Sequence[Record],
    records_b: Sequence[Record],
    reducer: Reducer | None = None,
) -> EvaluationComparison:
    """Compare the stored records of evaluation ``name`` in experiment A and in B; with
    a ``reducer``, the values each row got over its epochs reduced by it."""
    sides = _Side(records_a, reducer), _Side(records_b, reducer)
    a, b = sides
    paired = sorted(a.inputs.keys() & b.inputs.keys())
    names = list(dict.fromkeys([*a.tally.values, *b.tally.values]))
    return EvaluationComparison(
        name=name,
        paired_rows=len(paired),
        only_in_a=len(a.inputs.keys() - b.inputs.keys()),
        only_in_b=len(b.inputs.keys() - a.inputs.keys()),
        different_inputs=sum(a.inputs[i] != b.inputs[i] for i in paired),
        scores=[_compare_score(s, a, b, paired) for s in names if a.has(s) and b.has(s)],
        scores_only_in_a=[s for s in names if not b.has(s)],
        scores_only_in_b=[s for s in names if not a.has(s)],
    )


class _Side:
    """One experiment's records of the evaluation, tallied."""

    def __init__(self, records: Sequence[Record], reducer: Reducer | None = None):
        self.tally = ScoreTally(records)
        self.reducer = reducer
        self.inputs = {r.item_id: r.dataset_row for r in records}

    def has(self, score: str) -> bool:
        """It has the score, or every row errored (they count as False for every score)."""
        return score in self.tally.values or (bool(self.inputs) and not self.tally.completed())

    def counted(self, score: str) -> dict[int, Any]:
        if score in self.tally.values:
            return self.tally.counted(score, self.reducer)
        return dict.fromkeys(self.inputs, False)

    def metrics(self, score: str) -> list[Metric]:
        return self.tally.metrics.get(score, [])


def _compare_score(score: str, a: _Side, b: _Side, paired: list[int]) -> ScoreComparison:
    values_a, values_b = a.counted(score), b.counted(score)
    pairs = [(values_a[i], values_b[i]) for i in paired]
    # the metrics both sides name; a side whose every row errored names none
    metrics_a = {m.label: m for m in a.metrics(score)}
    metrics_b = {m.label: m for m in b.metrics(score)}
    both = bool(metrics_a and metrics_b)
    if both:
        chosen = [m for name, m in metrics_a.items() if name in metrics_b]
    else:
        chosen = list((metrics_a or metrics_b).values())
    metrics, failures = [], []
    for metric in chosen:
        try:
            metrics.append(
                MetricComparison(
                    metric.label,
                    metric.estimate(list(values_a.values())),
                    metric.estimate(list(values_b.values())),
                    paired_difference(metric, pairs),
                )
            )
        except Exception as exc:  # a value the metric cannot take, or its own bug
            failures.append(f"metric {metric.label}: {str(exc) or type(exc).__name__}")
    regressed: list[RowChange] = []
    improved: list[RowChange] = []
    for item_id, (x, y) in zip(paired, pairs, strict=True):
        before, after = _number(x), _number(y)
        if before is None or after is None or before == after:
            continue
        change = RowChange(item_id, b.inputs[item_id], x, y)
        (regressed if after < before else improved).append(change)
    return ScoreComparison(
        score,
        metrics,
        regressed,
        improved,
        metrics_only_in_a=[n for n in metrics_a if n not in metrics_b] if both else [],
        metrics_only_in_b=[n for n in metrics_b if n not in metrics_a] if both else [],
        metric_errors=failures,
    )


def paired_difference(metric: Metric, pairs: Sequence[tuple[Any, Any]]) -> Estimate:
    """``metric(B) - metric(A)`` over paired values ``(a, b)``, with its 95 % interval."""
    per_row = _PER_ROW.get(metric.label)
    if per_row is None:
        return bootstrap(
            lambda sample: metric([b for _, b in sample]) - metric([a for a, _ in sample]),
            pairs,
        )
    differences = []
    for a, b in pairs:
        x, y = per_row(a), per_row(b)
        if x is not None and y is not None:
            differences.append(y - x)
    estimate = Estimate.of_mean(differences)
    return estimate if estimate.method is None else replace(estimate, method="paired normal")


def _number(value: Any) -> float | None:
    """A row's value as a number to order by: 1/0 for true/false, None when it has none
    (None, NaN)."""
    if value is None:
        return None
    if isinstance(value, (bool, int, float)):
        number = numeric(value)
        return None if number is None or math.isnan(number) else number
    return 1.0 if value else 0.0
