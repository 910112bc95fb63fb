"""What ``@foreach`` knows about one evaluation: its function, columns and dataset.

An :class:`EvaluationSpec` turns dataset rows into keyword arguments lazily (a
generator is never materialised).
"""

from __future__ import annotations

import dataclasses
import inspect
import weakref
from collections.abc import Callable, Iterable, Iterator, Sized
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dotevals.errors import ConfigurationError, DatasetError

if TYPE_CHECKING:
    from dotevals._declare.error_bound import ErrorBound
    from dotevals._declare.gates import Gate
    from dotevals._declare.retry_policy import Retries
    from dotevals.concurrency import AsyncStrategy, SyncStrategy
    from dotevals.metrics import Reducer

#: Iterator datasets whose rows have been read, by id, for as long as they live.
_READ: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()
#: Those that take no weak reference (``map``, ``zip``, list iterators), by the
#: function that read them, for as long as it lives.
_READ_BY_FUNCTION: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def parse_columns(column_spec: str) -> tuple[str, ...]:
    """``"question, answer"`` -> ``("question", "answer")``; names must be identifiers."""
    __tracebackhide__ = True
    if not isinstance(column_spec, str):
        raise ConfigurationError(
            f"@foreach expects the column names as one string like 'question,answer', "
            f"got {type(column_spec).__name__}"
        )
    columns = tuple(c.strip() for c in column_spec.split(","))
    bad = [c for c in columns if not c.isidentifier()]
    if bad or not columns:
        raise ConfigurationError(
            f"@foreach column spec {column_spec!r} is not a comma-separated list of Python "
            f"names (bad: {', '.join(map(repr, bad))})"
        )
    if len(set(columns)) != len(columns):
        raise ConfigurationError(f"@foreach column spec {column_spec!r} repeats a column")
    return columns


def parse_epochs(value: int | str | None) -> int | None:
    """How many times each row is scored: a whole number >= 1, or None (the run's, else 1)."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"epochs must be a whole number >= 1, got {value!r:.40}")
    return value


def parse_reducers(values: Iterable[str | Reducer] | str | None, where: str) -> tuple[Reducer, ...]:
    """The reducers ``@foreach(..., reducers=[...])`` names (see
    :func:`~dotevals.metrics.get_reducer`); ConfigurationError naming a wrong one."""
    __tracebackhide__ = True
    if values is None:
        return ()
    from dotevals.metrics import get_reducer

    if isinstance(values, str):
        values = [values]
    try:
        found = tuple(get_reducer(value) for value in values)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{where}: {exc}") from None
    if not found:
        raise ConfigurationError(f"{where}: reducers=[] names no reducer; leave it out for mean")
    return tuple(dict.fromkeys(found))


def parse_timeout(value: float | str | None) -> float | None:
    """Seconds one row may take: a number > 0, or None for no limit."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = 0.0
    if isinstance(value, bool) or not seconds > 0 or seconds == float("inf"):
        raise ConfigurationError(f"timeout must be a number of seconds > 0, got {value!r}")
    return seconds


@dataclass
class EvaluationSpec:
    """A function scored over every row of a dataset.

    ``fixture_names`` are the function's parameters that are not columns:
    pytest (or the caller of :func:`dotevals.run`) provides them.
    """

    func: Callable[..., Any]
    columns: tuple[str, ...]
    dataset: Iterable[Any]
    retrying: Retries
    concurrency: SyncStrategy | AsyncStrategy | None = None
    #: Seconds one row may take (None: the run's default, if any).
    timeout: float | None = None
    #: The lowest metric values the evaluation may have (``@foreach(..., fail_under=...)``).
    fail_under: tuple[Gate, ...] = ()
    #: The column whose value identifies a row, matching rows by it on resume
    #: (``@foreach(..., key=...)``; None: rows are matched by their place).
    key: str | None = None
    #: How many stored rows may error (``@foreach(..., fail_on_error=...)``; None: the
    #: run's bound, by default none but every row).
    fail_on_error: ErrorBound | None = None
    #: How many times each row is scored (``@foreach(..., epochs=k)``; None: the run's
    #: ``--epochs``, else 1).
    epochs: int | None = None
    #: What turns a row's values over its epochs into one (``@foreach(..., reducers=...)``;
    #: none given: ``mean``).
    reducers: tuple[Reducer, ...] = ()
    fixture_names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        __tracebackhide__ = True
        name = self.name
        params = inspect.signature(self.func).parameters
        missing = [c for c in self.columns if c not in params]
        accepts_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())
        if missing and not accepts_kwargs:
            raise ConfigurationError(
                f"{name}: column {', '.join(map(repr, missing))} is not a parameter of "
                f"the function; add it to the signature or remove it from the column spec"
            )
        self._check_strategy()
        if self.epochs is not None:
            self.repeats(self.epochs)
        if self.key is not None and self.key not in self.columns:
            raise ConfigurationError(
                f"{name}: key {self.key!r} is not one of the columns ({', '.join(self.columns)}); "
                "name the column whose value identifies each row"
            )
        if isinstance(self.dataset, (str, bytes)) or not isinstance(self.dataset, Iterable):
            raise ConfigurationError(
                f"{name}: the dataset must be an iterable of rows (list, tuple, generator, "
                f"registered dataset), got {type(self.dataset).__name__}"
            )
        self.fixture_names = tuple(
            p.name
            for p in params.values()
            if p.name not in self.columns
            and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
            and not (self.is_method and p.name == "self")
        )

    def _check_strategy(self) -> None:
        __tracebackhide__ = True
        from dotevals.concurrency import AsyncStrategy, SyncStrategy

        strategy = self.concurrency
        wanted = AsyncStrategy if self.is_async else SyncStrategy
        if strategy is not None and not isinstance(strategy, wanted):
            kind, choices = (
                ("an async def", "SlidingWindow, Adaptive, AsyncSequential")
                if self.is_async
                else ("a plain (sync)", "Sequential, Batch")
            )
            raise ConfigurationError(
                f"{self.name}: {type(strategy).__name__} cannot schedule {kind} evaluation; "
                f"use one of {choices}"
            )

    @property
    def name(self) -> str:
        return getattr(self.func, "__name__", repr(self.func))

    def repeats(self, default: int | None) -> tuple[int, tuple[Reducer, ...]]:
        """The epochs of each row (its own, else ``default``, else 1) and the reducers of
        its values: those given, else ``mean`` when there are several epochs.
        ConfigurationError when a reducer needs more epochs than there are."""
        __tracebackhide__ = True
        epochs = self.epochs or default or 1
        reducers = self.reducers
        if not reducers and epochs > 1:
            from dotevals.metrics import get_reducer

            reducers = (get_reducer("mean"),)
        short = [r for r in reducers if r.needs > epochs]
        if short:
            raise ConfigurationError(
                f"{self.name}: {short[0].label} needs {short[0].needs} epochs of each row, and "
                f"the evaluation has {epochs}; set epochs={short[0].needs} or more"
            )
        return epochs, reducers

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.func)

    @property
    def total(self) -> int | None:
        """Number of rows when the dataset knows it (for progress bars)."""
        num_rows = getattr(self.dataset, "num_rows", None)
        if isinstance(num_rows, int):
            return num_rows
        return len(self.dataset) if isinstance(self.dataset, Sized) else None

    @property
    def is_method(self) -> bool:
        """Defined in a class body: its first parameter is the instance."""
        first = next(iter(inspect.signature(self.func).parameters), None)
        return first == "self" and "." in getattr(self.func, "__qualname__", "")

    @property
    def _function(self) -> Any:
        """The function itself (a method's, for every instance it is bound to)."""
        return getattr(self.func, "__func__", self.func)

    def bound_to(self, instance: Any) -> EvaluationSpec:
        """The evaluation of a test class's method, for one instance of the class."""
        return dataclasses.replace(self, func=self.func.__get__(instance))

    def rows(self) -> Iterator[tuple[int, dict[str, Any] | DatasetError]]:
        """``(item_id, keyword arguments)`` per row, lazily, in dataset order.

        A row that does not fit the columns gives a :class:`DatasetError` in
        place of its arguments (it is stored as that row's error); a first row
        that does not fit raises at once, since then the whole spec is wrong.
        """
        dataset = self.dataset
        if iter(dataset) is dataset:  # a generator or iterator: it can be read once
            read_by_function = _READ_BY_FUNCTION.get(self._function)
            if _READ.get(id(dataset)) is dataset or read_by_function is dataset:
                raise DatasetError(
                    f"{self.name}: its dataset is a generator that an earlier run (or another "
                    "parameter set) has already read; pass a list, or a function's result "
                    "called per run, or a registered dataset"
                )
            try:
                _READ[id(dataset)] = dataset
            except TypeError:  # it takes no weak reference
                _READ_BY_FUNCTION[self._function] = dataset
        for item_id, row in enumerate(dataset):
            try:
                yield item_id, self.row_arguments(item_id, row)
            except DatasetError as exc:
                if item_id == 0:
                    raise
                yield item_id, exc

    def row_arguments(self, item_id: int, row: Any) -> dict[str, Any]:
        columns = self.columns
        if isinstance(row, dict):
            absent = [c for c in columns if c not in row]
            if absent:
                raise DatasetError(
                    f"{self.name}: row {item_id} has no key {', '.join(map(repr, absent))} "
                    f"(its keys: {', '.join(map(str, row))}); rename the keys or the columns"
                )
            return {c: row[c] for c in columns}
        if len(columns) == 1:
            if isinstance(row, (tuple, list)) and len(row) == 1:
                return {columns[0]: row[0]}
            return {columns[0]: row}
        if not isinstance(row, (tuple, list)):
            raise DatasetError(
                f"{self.name}: row {item_id} is a {type(row).__name__}, but the columns "
                f"{','.join(columns)} need a tuple, list or dict per row"
            )
        if len(row) != len(columns):
            raise DatasetError(
                f"{self.name}: row {item_id} has {len(row)} values but the columns are "
                f"{','.join(columns)} ({len(columns)}); make every row match the column spec"
            )
        return dict(zip(columns, row, strict=True))


#: The attribute of a ``@foreach`` function that holds its EvaluationSpec.
_ATTRIBUTE = "__dotevals__"


def attach(function: Callable[..., Any], evaluation: EvaluationSpec) -> None:
    """Make ``function`` the ``@foreach`` function of ``evaluation``."""
    setattr(function, _ATTRIBUTE, evaluation)


def get_evaluation(obj: Any) -> EvaluationSpec | None:
    """The :class:`EvaluationSpec` behind a ``@foreach`` function, or None."""
    return getattr(obj, _ATTRIBUTE, None)
