"""Score gates: the lowest value a metric may have before its evaluation fails.

A gate is written ``SCORE=VALUE`` or ``SCORE:METRIC=VALUE`` on the command
line (``--fail-under``), or as ``{"SCORE": VALUE}`` / ``{"SCORE:METRIC": VALUE}``
in ``@foreach(..., fail_under=...)``; a VALUE may be a percentage (``70%`` is
0.7), and a VALUE above 1 for a share such as ``accuracy`` is refused.
``SCORE`` alone gates the score's first metric. An evaluation passes a gate
when the metric, computed over every row stored (resumed rows included), is at
least the threshold.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dotevals.errors import ConfigurationError
from dotevals.intervals import Estimate

__all__ = ["Gate", "GateCheck", "parse_gate", "gates_from_mapping", "check_gates"]


@dataclass(frozen=True)
class Gate:
    """``score`` (its ``metric``, or its first metric when None) must reach ``threshold``."""

    score: str
    metric: str | None
    threshold: float

    @property
    def key(self) -> str:
        """``score`` or ``score:metric``, as the gate was written."""
        return self.score if self.metric is None else f"{self.score}:{self.metric}"


@dataclass(frozen=True)
class GateCheck:
    """A gate checked against one evaluation's metric."""

    gate: Gate
    metric: str
    estimate: Estimate

    @property
    def passed(self) -> bool:
        return self.estimate.value >= self.gate.threshold

    def describe(self) -> str:
        """``exact_match:accuracy = 0.6000 [0.3127, 0.8318], below the threshold 0.8``."""
        relation = "at least" if self.passed else "below"
        return (
            f"{self.gate.score}:{self.metric} = {self.estimate.format()}, "
            f"{relation} the threshold {self.gate.threshold:g}"
        )


def _threshold(value: object, where: str) -> float:
    """A number; ``"70%"`` is 0.7."""
    text = value.strip() if isinstance(value, str) else None
    percent = text is not None and text.endswith("%")
    if percent:
        value = text.removesuffix("%").strip()  # type: ignore[union-attr]
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if percent:
        number /= 100
    if isinstance(value, bool) or not math.isfinite(number):
        raise ConfigurationError(f"{where}: the threshold must be a number, got {value!r}")
    return number


def _gate(key: str, value: object, where: str) -> Gate:
    score, _, metric = key.strip().partition(":")
    if not score.strip() or (":" in key and not metric.strip()):
        raise ConfigurationError(
            f"{where}: {key!r} does not name a score; write SCORE or SCORE:METRIC, "
            "e.g. exact_match or exact_match:accuracy"
        )
    return Gate(score.strip(), metric.strip() or None, _threshold(value, where))


def parse_gate(text: str, where: str = "--fail-under") -> Gate:
    """``"exact_match=0.8"`` or ``"exact_match:accuracy=0.8"`` -> :class:`Gate`."""
    key, equals, value = text.rpartition("=")
    if not equals:
        raise ConfigurationError(
            f"{where} {text!r}: write SCORE=VALUE or SCORE:METRIC=VALUE, e.g. exact_match=0.8"
        )
    return _gate(key, value.strip(), f"{where} {text!r}")


def gates_from_mapping(fail_under: Mapping[str, float] | None, where: str) -> tuple[Gate, ...]:
    """The gates of ``fail_under={"SCORE" or "SCORE:METRIC": VALUE}``."""
    if fail_under is None:
        return ()
    if not isinstance(fail_under, Mapping):
        raise ConfigurationError(
            f"{where}: fail_under must be a dict such as {{'exact_match': 0.8}}, "
            f"got {type(fail_under).__name__}"
        )
    return tuple(
        _gate(str(key), value, f"{where}: fail_under") for key, value in fail_under.items()
    )


def check_gates(
    name: str,
    estimates: Mapping[str, Mapping[str, Estimate]],
    own: Sequence[Gate] = (),
    shared: Sequence[Gate] = (),
) -> list[GateCheck]:
    """Check evaluation ``name``'s metrics against its ``own`` gates and the ``shared`` ones.

    An own gate must name one of the evaluation's scores; a shared gate (from
    the command line) applies to the evaluations that have its score. A gate
    naming a metric the score does not have is a ConfigurationError, as is an
    own gate naming an unknown score. An own gate replaces a shared one with
    the same key. A gated metric whose value is not a number (a custom metric
    that returned text or None) is a ConfigurationError too.
    """
    keys = {gate.key for gate in own}
    checks = []
    for gate in [*own, *(g for g in shared if g.key not in keys)]:
        metrics = estimates.get(gate.score)
        if metrics is None:
            if gate in own:
                known = ", ".join(map(repr, estimates)) or "none"
                raise ConfigurationError(
                    f"{name}: fail_under names the score {gate.score!r}, which the evaluation "
                    f"does not have (its scores: {known})"
                )
            continue
        if not metrics:
            raise ConfigurationError(f"{name}: the score {gate.score!r} has no metric to gate")
        metric = gate.metric or next(iter(metrics))
        if metric not in metrics:
            raise ConfigurationError(
                f"{name}: the gate {gate.key}={gate.threshold:g} names the metric {metric!r}, "
                f"which {gate.score!r} does not have (its metrics: "
                f"{', '.join(map(repr, metrics))})"
            )
        value: object = metrics[metric].value  # a custom metric may return anything
        if not isinstance(value, numbers.Real):
            raise ConfigurationError(
                f"{name}: the gate {gate.key}={gate.threshold:g} cannot be checked: the metric "
                f"{metric!r} of {gate.score!r} gave {value!r:.80}, not a number; make it "
                "return a number or gate another metric"
            )
        _check_reachable(name, gate, metric, metrics[metric])
        checks.append(GateCheck(gate, metric, metrics[metric]))
    return checks


def _check_reachable(name: str, gate: Gate, metric: str, estimate: Estimate) -> None:
    """A gate above 1 on a share (``accuracy``, or a metric with a Wilson interval) can
    never pass: most likely a percentage written for a fraction."""
    share = metric == "accuracy" or estimate.method == "wilson"
    if not share or gate.threshold <= 1:
        return
    hint = ""
    if gate.threshold <= 100:
        hint = f": write {gate.threshold / 100:g} (or {gate.threshold:g}%) for {gate.threshold:g} %"
    raise ConfigurationError(
        f"{name}: the gate {gate.key}={gate.threshold:g} can never pass, {gate.score}:{metric} "
        f"is a share between 0 and 1{hint}"
    )


def unmatched(shared: Sequence[Gate], scores: set[str]) -> list[Gate]:
    """The shared gates whose score no evaluation of the run has."""
    return [gate for gate in shared if gate.score not in scores]
