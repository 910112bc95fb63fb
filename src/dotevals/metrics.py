"""Metrics: functions from the list of one score's values to a number.

A metric is declared with :func:`metric` on a factory, so that it can take
options and be named in storage::

    @metric
    def accuracy() -> Metric:
        def compute(values: list) -> float:
            return sum(bool(v) for v in values) / len(values) if values else 0.0
        return compute

``accuracy()`` then returns a :class:`Metric` named ``"accuracy"``.
"""

from __future__ import annotations

import functools
import importlib
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["Metric", "metric", "accuracy", "mean", "get_metric"]

_REGISTRY: dict[str, Callable[..., Metric]] = {}


class Metric:
    """A named aggregate over the values of one score."""

    def __init__(self, name: str, compute: Callable[[list[Any]], float]):
        self.name = name
        self._compute = compute
        self._made_by: tuple[str, tuple[Any, ...], dict[str, Any]] | None = None

    @property
    def spec(self) -> str | dict[str, Any]:
        """How storage names this metric: its name, with its factory's arguments if any."""
        if self._made_by is None or not (self._made_by[1] or self._made_by[2]):
            return self.name
        return {"name": self.name, "args": list(self._made_by[1]), "kwargs": self._made_by[2]}

    def __reduce__(self) -> Any:
        # A metric made by a registered factory travels as (module, name, arguments):
        # rebuilding it is far cheaper than pickling its closure for every row.
        if self._made_by is not None:
            return (_rebuild, (self._made_by[0], self.name, *self._made_by[1:]))
        return (Metric, (self.name, self._compute))

    def __call__(self, values: Sequence[Any]) -> float:
        return self._compute(list(values))

    def __repr__(self) -> str:
        return f"Metric({self.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Metric) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)


def metric(factory: Callable[..., Callable[[list[Any]], float]]) -> Callable[..., Metric]:
    """Turn a factory of ``values -> number`` functions into a named metric factory."""

    @functools.wraps(factory)
    def make(*args: Any, **kwargs: Any) -> Metric:
        made = Metric(factory.__name__, factory(*args, **kwargs))
        if _REGISTRY.get(factory.__name__) is make:
            made._made_by = (factory.__module__, args, kwargs)
        return made

    previous = _REGISTRY.get(factory.__name__)
    if previous is not None and previous.__module__ != make.__module__:
        warnings.warn(
            f"metric {factory.__name__!r} from {factory.__module__} replaces the one from "
            f"{previous.__module__} when results are read back; give it another name",
            stacklevel=2,
        )
    _REGISTRY[factory.__name__] = make
    return make


def _rebuild(module: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Metric:
    if name not in _REGISTRY:
        importlib.import_module(module)
    return _REGISTRY[name](*args, **kwargs)


def get_metric(spec: str | dict[str, Any]) -> Metric | None:
    """The registered metric a stored spec names (see :meth:`Metric.spec`), or None."""
    if isinstance(spec, str):
        spec = {"name": spec}
    factory = _REGISTRY.get(spec.get("name", ""))
    if factory is None:
        return None
    try:
        return factory(*spec.get("args", ()), **spec.get("kwargs", {}))
    except TypeError:  # arguments that do not fit the factory (it changed)
        return None


def _numbers(values: list[Any]) -> list[float]:
    return [float(v) for v in values if v is not None]


@metric
def accuracy() -> Callable[[list[Any]], float]:
    """Share of truthy values (errored rows count as False)."""

    def compute(values: list[Any]) -> float:
        return sum(1 for v in values if v) / len(values) if values else 0.0

    return compute


@metric
def mean() -> Callable[[list[Any]], float]:
    """Arithmetic mean of numeric values (booleans count as 0/1)."""

    def compute(values: list[Any]) -> float:
        numbers = _numbers(values)
        return math.fsum(numbers) / len(numbers) if numbers else 0.0

    return compute
