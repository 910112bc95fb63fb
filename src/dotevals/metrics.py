"""Metrics: functions from the list of one score's values to a number.

A metric is declared with :func:`metric` on a factory, so that it can take
options and be named in storage::

    @metric
    def accuracy() -> Metric:
        def compute(values: list) -> float:
            return sum(bool(v) for v in values) / len(values) if values else 0.0
        return compute

``accuracy()`` then returns a :class:`Metric` named ``"accuracy"``. A compute
function may return an :class:`~dotevals.intervals.Estimate` (the value with its
standard error and 95 % interval) instead of a number: the built-ins do.

Metric factories from installed plugins (entry-point group ``dotevals.metrics``)
are imported from here like the built-ins: ``from dotevals.metrics import
harmonic_mean``. :data:`registry` is the dict of every metric by name.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import math
import reprlib
import warnings
from collections.abc import Callable, ItemsView, Iterator, KeysView, Sequence, ValuesView
from typing import Any

from dotevals._util.registry import Registry
from dotevals.intervals import Estimate

__all__ = ["Metric", "metric", "accuracy", "mean", "get_metric", "numeric", "registry"]

#: What a metric computes from one score's values: a number, or an Estimate.
Compute = Callable[[list[Any]], float | Estimate]

#: Metric factories by name: those made with @metric, then the plugins'.
_factories: Registry[Callable[..., Metric]] = Registry("dotevals.metrics", "metric")


class Metric:
    """A named aggregate over the values of one score."""

    def __init__(self, name: str, compute: Compute):
        self.name = name
        self.__name__ = name
        self._compute = compute
        self._made_by: tuple[str, tuple[Any, ...], dict[str, Any]] | None = None

    @property
    def spec(self) -> str | dict[str, Any]:
        """How storage names this metric: its name, with its factory's arguments if any."""
        if self._made_by is None or not (self._made_by[1] or self._made_by[2]):
            return self.name
        return {"name": self.name, "args": list(self._made_by[1]), "kwargs": self._made_by[2]}

    @property
    def factory_call(self) -> str | None:
        """The factory call that made this metric, as text (equal calls make equal
        metrics); None for a metric made without a registered factory."""
        if self._made_by is None:
            return None
        return repr((self.name, *self._made_by))

    def __reduce__(self) -> Any:
        # A metric made by a registered factory travels as (module, name, arguments):
        # rebuilding it is far cheaper than pickling its closure for every row.
        if self._made_by is not None:
            return (_rebuild, (self._made_by[0], self.name, *self._made_by[1:]))
        return (Metric, (self.name, self._compute))

    def __call__(self, values: Sequence[Any]) -> float:
        return self.estimate(values).value

    def estimate(self, values: Sequence[Any]) -> Estimate:
        """The metric of ``values`` with its standard error and 95 % interval, if it has one."""
        result = self._compute(list(values))
        return result if isinstance(result, Estimate) else Estimate(result)

    def __repr__(self) -> str:
        return f"Metric({self.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Metric) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)


def metric(factory: Callable[..., Compute]) -> Callable[..., Metric]:
    """Turn a factory of ``values -> number`` (or ``-> Estimate``) functions into a
    named metric factory."""

    plain: list[Metric] = []  # the metric made without arguments, once made

    @functools.wraps(factory)
    def make(*args: Any, **kwargs: Any) -> Metric:
        if plain and not (args or kwargs):  # rows make the same metric over and over
            return plain[0]
        made = Metric(factory.__name__, factory(*args, **kwargs))
        if _factories.loaded.get(factory.__name__) is make:
            made._made_by = (factory.__module__, args, kwargs)
            if not (args or kwargs):
                plain.append(made)
        return made

    previous = _factories.loaded.get(factory.__name__)
    if previous is not None and previous.__module__ != make.__module__:
        warnings.warn(
            f"metric {factory.__name__!r} from {factory.__module__} replaces the one from "
            f"{previous.__module__} when results are read back; give it another name",
            stacklevel=2,
        )
    _factories.register(factory.__name__, make)
    return make


def _rebuild(module: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Metric:
    if name not in _factories.loaded:
        importlib.import_module(module)
    return _factories.loaded[name](*args, **kwargs)


def get_metric(spec: str | dict[str, Any]) -> Metric | None:
    """The metric a stored spec names (see :meth:`Metric.spec`), or None.

    The metric is what was assigned to its name in :data:`registry` (for a spec
    without arguments), else made by its factory: one made with :func:`metric`
    in this process or one a ``dotevals.metrics`` entry point provides.
    """
    if isinstance(spec, str):
        spec = {"name": spec}
    name = spec.get("name", "")
    if dict.__contains__(registry, name) and not (spec.get("args") or spec.get("kwargs")):
        assigned = dict.__getitem__(registry, name)
        return assigned if isinstance(assigned, Metric) else Metric(name, assigned)
    factory = _factories.get(name)
    if factory is None:
        return None
    try:
        return factory(*spec.get("args", ()), **spec.get("kwargs", {}))
    except TypeError:  # arguments that do not fit the factory (it changed)
        return None


def numeric(value: Any) -> float | None:
    """The number a score's value counts as in :func:`mean`: a number as it is (booleans
    as 0/1, an integer too large for a float as an infinity), None for None;
    ValueError for anything else, such as text."""
    if value is None:
        return None
    if not isinstance(value, (str, bytes)):
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
        except (TypeError, ValueError):
            pass
    raise ValueError(
        f"its value {reprlib.repr(value)} is {type(value).__name__}, not a number: "
        "return numbers for mean(), or true/false values under accuracy()"
    )


@metric
def accuracy() -> Compute:
    """Share of truthy values (errored rows count as False), with its Wilson interval."""

    def compute(values: list[Any]) -> Estimate:
        return Estimate.wilson(sum(1 for v in values if v), len(values))

    return compute


@metric
def mean() -> Compute:
    """Arithmetic mean of numeric values (booleans count as 0/1, None is left out), with
    its normal interval; a NaN value makes it NaN."""

    def compute(values: list[Any]) -> Estimate:
        numbers = [n for n in map(numeric, values) if n is not None]
        return Estimate.of_mean(numbers)

    return compute


class MetricRegistry(dict[str, Callable[[list[Any]], Any]]):
    """Every metric name mapped to that metric, as a dict.

    The names are those of the ``@metric`` factories defined so far and of the
    ``dotevals.metrics`` entry points that make a metric with no arguments
    (``registry["accuracy"]([True, False])``), and those given a metric by
    assignment: ``registry["mine"] = compute`` (a :class:`Metric`, or any function
    of the values). Records stored with a metric of an assigned name read back
    with it. A factory that needs arguments has no entry: ``registry[name]``
    raises a TypeError saying to call it.
    """

    def __missing__(self, name: str) -> Metric:
        factory = _factories[name]
        if not _takes_no_arguments(factory):
            raise TypeError(
                f"metric {name!r} needs arguments: call its factory, "
                f"e.g. dotevals.metrics.{name}(...), rather than registry[{name!r}]"
            )
        return factory()

    def _names(self) -> list[str]:
        made = {name for name in _factories if _takes_no_arguments(_factories[name])}
        return sorted({*dict.keys(self), *made})

    def __contains__(self, name: object) -> bool:
        if dict.__contains__(self, name):
            return True
        factory = _factories.get(name) if isinstance(name, str) else None
        return factory is not None and _takes_no_arguments(factory)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def get(self, name: str, default: Any = None) -> Any:
        return self[name] if name in self else default  # noqa: SIM401 (this is self.get)

    def keys(self) -> KeysView[str]:  # type: ignore[override]
        return KeysView(self)

    def values(self) -> ValuesView[Callable[[list[Any]], Any]]:  # type: ignore[override]
        return ValuesView(self)

    def items(self) -> ItemsView[str, Callable[[list[Any]], Any]]:  # type: ignore[override]
        return ItemsView(self)

    def __repr__(self) -> str:
        return f"<metric registry {self._names()}>"


def _takes_no_arguments(factory: Callable[..., Metric]) -> bool:
    try:
        inspect.signature(factory).bind()
    except TypeError:
        return False
    return True


#: Every metric by name, built-in, defined with @metric or from a plugin.
registry = MetricRegistry()


__getattr__ = _factories.module_getattr(__name__)
