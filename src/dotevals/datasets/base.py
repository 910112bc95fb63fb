"""The base class of registered datasets.

A registered dataset is a class with a ``name``, the ``columns`` of its rows
and the ``splits`` it has. Evaluations name it instead of passing rows::

    @foreach.arithmetic("test")
    def eval_arithmetic(question, answer, model): ...

Writing one in a third-party package::

    # my_package/datasets.py
    from dotevals.datasets import Dataset

    class Capitals(Dataset):
        \"\"\"Capital cities of a few countries.\"\"\"

        name = "capitals"
        columns = ["country", "capital"]
        splits = ["test"]
        num_rows = 2

        def __init__(self, split: str, upper: bool = False, **kwargs):
            super().__init__(split, **kwargs)  # validates the split, rejects unknown options
            self.upper = upper

        def __iter__(self):
            for country, capital in [("France", "Paris"), ("Japan", "Tokyo")]:
                yield (country.upper() if self.upper else country, capital)

and declaring it in the package's ``pyproject.toml`` so that dotevals finds it
once the package is installed::

    [project.entry-points."dotevals.datasets"]
    capitals = "my_package.datasets:Capitals"

(Code that is not packaged can call ``register_dataset(Capitals)`` or use it
as a class decorator.)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, ClassVar

from dotevals.errors import DatasetError

__all__ = ["Dataset"]


class Dataset(ABC):
    """Rows of a named dataset, one tuple per row in ``columns`` order.

    Subclasses set the class attributes ``name``, ``columns`` and ``splits``
    and implement ``__iter__``. ``num_rows`` (class attribute, or set per
    instance when it depends on the split) is used for progress totals; leave
    it ``None`` when unknown.

    ``__init__`` receives the split and the keyword arguments given to
    ``@foreach.<name>(split, **kwargs)``. A dataset without splits sets
    ``splits = []`` and is named without one: ``@foreach.<name>()`` (its
    ``split`` is None). A subclass taking options declares
    them and passes the rest to ``super().__init__``, which rejects any it
    does not know, so a misspelled option is an error rather than ignored.
    """

    name: ClassVar[str]
    columns: ClassVar[list[str]]
    splits: ClassVar[list[str]]
    num_rows: int | None = None

    def __init__(self, split: str | None = None, **kwargs: Any):
        splits = ", ".join(repr(s) for s in self.splits)
        if not self.splits and split is not None:
            raise DatasetError(
                f"dataset {self.name!r} has no splits: name it without one, "
                f"@foreach.{self.name}(), not {split!r}"
            )
        if self.splits and split is None:
            raise DatasetError(f"dataset {self.name!r} needs a split: one of {splits}")
        if self.splits and split not in self.splits:
            raise DatasetError(
                f"dataset {self.name!r} has no split {split!r}: its splits are {splits}"
            )
        if kwargs:
            raise DatasetError(
                f"dataset {self.name!r} got unknown option(s) "
                f"{', '.join(repr(k) for k in sorted(kwargs))}"
            )
        self.split = split

    @abstractmethod
    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        """Yield one tuple per row, its values in ``columns`` order."""

    def __repr__(self) -> str:  # a subclass may set up without calling super().__init__
        return f"{type(self).__name__}(split={getattr(self, 'split', None)!r})"
