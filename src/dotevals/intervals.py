"""Uncertainty of a metric: its standard error and a 95 % interval.

An :class:`Estimate` is a metric's value with its standard error and the two
bounds of its 95 % confidence interval. The built-in metrics compute theirs in
closed form:

- ``accuracy``, a proportion: the Wilson score interval (:meth:`Estimate.wilson`),
  which stays inside [0, 1] and keeps its coverage near 0 and 1;
- ``mean``: the normal interval, mean ± 1.96 · s/√n with ``s`` the sample
  standard deviation (:meth:`Estimate.of_mean`).

A custom metric gets an interval by returning an ``Estimate`` rather than a
number, for example one from :func:`bootstrap`. A metric that returns a plain
number has no interval (``stderr``, ``low`` and ``high`` are None).
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Estimate", "Z95", "bootstrap", "percentile", "wilson_bounds"]

#: The standard normal quantile of a two-sided 95 % interval (1.959963...).
Z95 = statistics.NormalDist().inv_cdf(0.975)
#: Resamples :func:`bootstrap` draws unless told otherwise.
RESAMPLES = 1000


@dataclass(frozen=True)
class Estimate:
    """A metric's value, its standard error and its 95 % interval ``[low, high]``.

    ``method`` names how the interval was computed (``"wilson"``, ``"normal"``,
    ``"bootstrap"``, or what a custom metric says); ``None`` bounds mean there
    is no interval (too few rows, or a metric that gives none).
    """

    value: float
    stderr: float | None = None
    low: float | None = None
    high: float | None = None
    method: str | None = None

    @classmethod
    def wilson(cls, successes: int, n: int) -> Estimate:
        """A proportion ``successes / n``: binomial standard error, Wilson interval."""
        if n == 0:
            return cls(0.0)
        p = successes / n
        low, high = wilson_bounds(successes, n)
        return cls(p, math.sqrt(p * (1 - p) / n), low, high, "wilson")

    @classmethod
    def of_mean(cls, numbers: Sequence[float]) -> Estimate:
        """A mean: standard error ``s/√n`` and the normal interval (needs two numbers).

        A NaN among the numbers makes the mean NaN, an infinity makes it infinite
        (or NaN, with both signs): such a mean has no interval.
        """
        n = len(numbers)
        if n == 0:
            return cls(0.0)
        if not all(map(math.isfinite, numbers)):
            return cls(sum(numbers) / n)
        try:
            mean = math.fsum(numbers) / n
        except OverflowError:  # finite numbers whose sum no float holds
            mean = math.fsum(x / n for x in numbers)
        if n == 1:
            return cls(mean)
        try:
            stderr = statistics.stdev(numbers) / math.sqrt(n)
        except OverflowError:  # a spread no float holds
            return cls(mean)
        return cls(mean, stderr, mean - Z95 * stderr, mean + Z95 * stderr, "normal")

    def to_dict(self) -> dict[str, Any]:
        """``{"value", "stderr", "low", "high", "method"}``, JSON-ready."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Estimate:
        fields: dict[str, Any] = {k: data.get(k) for k in cls.__dataclass_fields__}
        return cls(**fields)

    def format(self, digits: int = 4) -> str:
        """``0.8000 [0.7342, 0.8563]``, or the value alone when there is no interval."""
        text = f"{self.value:.{digits}f}"
        if self.low is None or self.high is None:
            return text
        return f"{text} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def wilson_bounds(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of the proportion ``successes / n`` (``n > 0``)."""
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap(
    statistic: Callable[[list[Any]], float],
    values: Sequence[Any],
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Estimate:
    """``statistic(values)`` with a percentile bootstrap interval.

    The values are resampled with replacement ``resamples`` times (with a
    fixed ``seed``, so the interval is the same on every run); the standard
    error is the standard deviation of the resampled statistics and the
    bounds their 2.5th and 97.5th percentiles. A resampled statistic that is NaN
    or infinite (the values hold one) leaves the value without an interval.
    """
    values = list(values)
    value = float(statistic(values))
    if len(values) < 2:
        return Estimate(value)
    rng = random.Random(seed)
    n = len(values)
    draws = sorted(float(statistic(rng.choices(values, k=n))) for _ in range(resamples))
    if not all(map(math.isfinite, draws)):
        return Estimate(value)
    low, high = percentile_bounds(draws)
    return Estimate(value, statistics.stdev(draws), low, high, "bootstrap")


def percentile_bounds(ordered: Sequence[float]) -> tuple[float, float]:
    """The 2.5th and 97.5th percentiles of sorted numbers (linear interpolation)."""
    return percentile(ordered, 0.025), percentile(ordered, 0.975)


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0 to 1) of sorted numbers, interpolated linearly."""
    position = q * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)
