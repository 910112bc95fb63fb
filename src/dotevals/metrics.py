"""Metrics, functions from the list of one score's values to a number, and reducers,
functions from one row's values over its epochs to one value.

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

A row scored several times (``@foreach(..., epochs=5)``) has one value per epoch;
a :class:`Reducer` turns them into one (``mean``, the default, ``median``,
``majority``, ``max``, ``min``, :func:`pass_at` and :func:`pass_hat`), and the
metrics run over the reduced values, one per row. Reducers are named like
metrics: ``@reducer`` registers one, ``get_reducer("pass_at_5")`` finds
``pass_at(5)``, and the entry-point group ``dotevals.reducers`` adds a plugin's.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import math
import re
import reprlib
import statistics
import warnings
from collections.abc import Callable, ItemsView, Iterator, KeysView, Sequence, ValuesView
from typing import Any, cast

from dotevals._util.registry import Registry
from dotevals.errors import ConfigurationError
from dotevals.intervals import Estimate

__all__ = [
    "Metric",
    "Reducer",
    "Share",
    "accuracy",
    "get_metric",
    "get_reducer",
    "mean",
    "metric",
    "numeric",
    "pass_at",
    "pass_hat",
    "reducer",
    "registry",
]

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
    def label(self) -> str:
        """How reports name this metric: its name, with its factory's arguments when it was
        made with some (``pass_at_k(5)``), so that two metrics of one factory are two."""
        return _call_label(self.name, self._made_by)

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
        return f"Metric({self.label!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Metric) and other.label == self.label

    def __hash__(self) -> int:
        return hash(self.label)


def _call_label(name: str, made_by: tuple[str, tuple[Any, ...], dict[str, Any]] | None) -> str:
    """``name``, or ``name(5, k=2)`` for an object its factory made with arguments."""
    if made_by is None or not (made_by[1] or made_by[2]):
        return name
    arguments = [*map(repr, made_by[1]), *(f"{k}={v!r}" for k, v in made_by[2].items())]
    return f"{name}({', '.join(arguments)})"


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


class Share(float):
    """A row's share of passing samples, as a reducer gives it (``mean``, ``pass_at(k)``
    ...): :func:`accuracy` counts such a row as that share rather than as true."""

    __slots__ = ()


@metric
def accuracy() -> Compute:
    """Share of truthy values (errored rows count as False), with its Wilson interval.

    With repeats, a row's value is reduced from its samples: a :class:`Share` counts as
    the share it is, and the accuracy is the mean over the rows, with its normal interval.
    """

    def compute(values: list[Any]) -> Estimate:
        if Share in set(map(type, values)):
            return Estimate.of_mean(
                [float(v) if type(v) is Share else float(bool(v)) for v in values]
            )
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


# Reducers ----------------------------------------------------------------
#: What a reducer computes from the values one row got in its epochs (for one score).
Reduce = Callable[[list[Any]], Any]

#: Reducer factories by name: the built-ins, those made with @reducer, then the plugins'
#: (entry-point group ``dotevals.reducers``).
_reducers: Registry[Callable[..., Reducer]] = Registry("dotevals.reducers", "reducer")


class TooFewSamples(ValueError):
    """A row has fewer samples than a reducer needs (``pass_at(5)`` of 3 epochs): the
    row is left out of that reducer's metrics."""


class Reducer:
    """A named function from one row's values over its epochs to one value; metrics
    then run over the rows' reduced values. Made by a :func:`reducer` factory."""

    def __init__(self, name: str, reduce: Reduce, arguments: tuple[Any, ...] = (), needs: int = 1):
        self.name = name
        self._reduce = reduce
        self._arguments = arguments
        #: The fewest epochs a row needs (``k`` of ``pass_at(k)``).
        self.needs = needs

    @property
    def label(self) -> str:
        """``mean``, or ``pass_at(5)`` for one made with arguments."""
        return _call_label(self.name, ("", self._arguments, {}) if self._arguments else None)

    def __call__(self, values: Sequence[Any]) -> Any:
        if len(values) < self.needs:
            raise TooFewSamples(
                f"{self.label} needs {self.needs} samples, the row has {len(values)}"
            )
        return self._reduce(list(values))

    def __repr__(self) -> str:
        return f"Reducer({self.label!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Reducer) and other.label == self.label

    def __hash__(self) -> int:
        return hash(self.label)


def reducer(factory: Callable[..., Reduce] | None = None, *, name: str | None = None) -> Any:
    """Turn a factory of ``values -> value`` functions into a named reducer factory,
    registered by name (``@foreach(..., reducers=["NAME"])``). ``needs=`` (a keyword the
    factory's function may set as its attribute ``needs``) is the fewest samples a row
    must have."""

    def register(factory: Callable[..., Reduce]) -> Callable[..., Reducer]:
        called = name or factory.__name__

        @functools.wraps(factory)
        def make(*args: Any) -> Reducer:
            reduce = factory(*args)
            return Reducer(called, reduce, args, getattr(reduce, "needs", 1))

        _reducers.register(called, make)
        return make

    return register if factory is None else register(factory)


def get_reducer(spec: str | Reducer) -> Reducer:
    """The reducer ``spec`` names: a Reducer as it is, ``"mean"``, ``"pass_at(5)"``, or
    ``"pass_at_5"`` for ``pass_at(5)``; ConfigurationError naming the known ones."""
    if isinstance(spec, Reducer):
        return spec
    if not isinstance(spec, str):
        raise ConfigurationError(
            f"a reducer is a name such as 'mean' or 'pass_at_5', got {spec!r:.40}"
        )
    name, arguments = spec.strip(), cast(tuple[Any, ...], ())
    called = re.fullmatch(r"(\w+)\((.*)\)", name)
    numbered = re.fullmatch(r"(\w+?)_(\d+)", name)
    if called:
        name = called.group(1)
        try:
            parsed = ast.literal_eval(f"({called.group(2)},)") if called.group(2).strip() else ()
        except (SyntaxError, ValueError):
            parsed = None
        if not isinstance(parsed, tuple):
            raise ConfigurationError(f"reducer {spec!r}: its arguments must be plain values")
        arguments = parsed
    elif numbered and _reducers.get(name) is None:
        name, arguments = numbered.group(1), (int(numbered.group(2)),)
    factory = _reducers.get(name)
    if factory is None:
        raise ConfigurationError(
            f"no reducer named {name!r}; known: {', '.join(_reducers)} "
            "(pass_at_5 names pass_at(5)); define your own with @dotevals.metrics.reducer"
        )
    try:
        return factory(*arguments)
    except TypeError as exc:
        raise ConfigurationError(f"reducer {spec!r}: {exc}") from None


def _truthy(values: list[Any]) -> bool:
    """Every value is True or False (an errored epoch counts as False)."""
    return all(isinstance(v, bool) for v in values)


def _numbers(values: list[Any]) -> list[float]:
    return [n for n in map(numeric, values) if n is not None]


@reducer(name="mean")
def _mean() -> Reduce:
    """The mean of the row's values (for true/false values, its share of passes)."""

    def reduce(values: list[Any]) -> Any:
        numbers = _numbers(values)
        share = math.fsum(numbers) / len(numbers) if numbers else math.nan
        return Share(share) if _truthy(values) else share

    return reduce


@reducer(name="median")
def _median() -> Reduce:
    """The median of the row's values."""

    def reduce(values: list[Any]) -> Any:
        numbers = _numbers(values)
        middle = statistics.median(numbers) if numbers else math.nan
        return Share(middle) if _truthy(values) else middle

    return reduce


@reducer(name="majority")
def _majority() -> Reduce:
    """The row's most frequent value (the mode); of values as frequent, the first one."""

    def reduce(values: list[Any]) -> Any:
        counts: dict[Any, int] = {}
        first: dict[Any, Any] = {}
        for value in values:
            key = _key(value)
            counts[key] = counts.get(key, 0) + 1
            first.setdefault(key, value)
        return first[max(counts, key=lambda k: counts[k])]  # max keeps the first of ties

    return reduce


def _key(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:  # a list or dict: by its text
        return ("unhashable", repr(value))
    return (type(value) is bool, value)


@reducer(name="max")
def _max() -> Reduce:
    """The row's largest value (for true/false values: true if any epoch passed)."""
    return lambda values: max(v for v in values if v is not None)


@reducer(name="min")
def _min() -> Reduce:
    """The row's smallest value (for true/false values: true if every epoch passed)."""
    return lambda values: min(v for v in values if v is not None)


@reducer
def pass_at(k: int) -> Reduce:
    """pass@k: the chance that at least one of k samples drawn from the row's n passes,
    estimated without bias from its c passing samples (Chen et al., 2021):
    1 − C(n−c, k) / C(n, k). A row needs n >= k samples."""
    _check_k("pass_at", k)

    def reduce(values: list[Any]) -> Share:
        n, c = len(values), sum(1 for v in values if v)
        return Share(1.0 - math.comb(n - c, k) / math.comb(n, k))

    reduce.needs = k  # type: ignore[attr-defined]
    return reduce


@reducer
def pass_hat(k: int) -> Reduce:
    """pass^k: the chance that all of k samples drawn from the row's n pass,
    estimated without bias from its c passing samples: C(c, k) / C(n, k)."""
    _check_k("pass_hat", k)

    def reduce(values: list[Any]) -> Share:
        n, c = len(values), sum(1 for v in values if v)
        return Share(math.comb(c, k) / math.comb(n, k))

    reduce.needs = k  # type: ignore[attr-defined]
    return reduce


def _check_k(name: str, k: object) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigurationError(f"{name}(k) needs a whole number k >= 1, got {k!r:.40}")


__getattr__ = _factories.module_getattr(__name__)
