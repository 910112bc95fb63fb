"""What a resumed evaluation checks: that its dataset gives the rows stored before.

Rows are matched by their place in the dataset (``item_id``). On resume, each
row already stored is compared with the row the dataset gives at that place,
and the first one that differs stops the evaluation: a dataset built from a
set, or shuffled without a seed, gives another order on every run, and
resuming it would count some rows twice and others never. Rows holding values
JSON has no type for (an image, an object) cannot be compared across runs and
are not.

With a key column (``@foreach(..., key="id")``) rows are matched by the key's
value wherever they are: a row keeps the ``item_id`` it was first stored
under, and a row new to the experiment takes the next free one.
"""

from __future__ import annotations

import reprlib
from array import array
from typing import Any

from dotevals.errors import DatasetError
from dotevals.models import Record
from dotevals.storage.encoding import encode_json

__all__ = ["StoredRows"]

_SCALARS = (str, int, float, bool, type(None))
_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 60
_WHAT_TO_DO = (
    "run it in a new --experiment, or give the dataset a stable order (no set, a "
    "seeded shuffle), or key its rows by a column: @foreach(..., key=COLUMN)"
)


class StoredRows:
    """The rows an evaluation has stored, to place the dataset's rows among them."""

    def __init__(self, evaluation: str, key: str | None = None):
        self.evaluation = evaluation
        self.key = key
        #: Without a key: a digest of the row stored at each item_id (0: none known).
        self._digests = array("q")
        #: With a key: the item_id each stored key has, and the first item_id free.
        self._ids: dict[str, int] = {}
        self._free = 0
        self._unkeyed: int | None = None  # a stored row without the key column
        #: With a key: the place in the dataset of each key met in this run.
        self._seen: dict[str, int] = {}

    @property
    def checks_nothing(self) -> bool:
        """Every row's item_id is its place, with nothing to compare it with: no key, and
        no row stored yet."""
        return self.key is None and not self._digests

    def add(self, record: Record) -> None:
        """Learn a stored record (a row's newer record after its older ones)."""
        row, item_id = record.dataset_row, record.item_id
        if self.key is not None:
            self._free = max(self._free, item_id + 1)
            if row and self.key not in row:
                self._unkeyed = item_id
            elif row:
                self._ids.setdefault(_text(row[self.key]), item_id)
        elif row:  # rows that could not be stored are kept as {}: nothing to compare
            if item_id >= len(self._digests):
                self._digests.frombytes(bytes(8 * (item_id + 1 - len(self._digests))))
            self._digests[item_id] = _digest(row)

    def place(self, position: int, row: dict[str, Any] | DatasetError) -> int:
        """The item_id of the dataset's row at ``position``: that position, or with a
        key the item_id its key is stored under (or the next free one). DatasetError
        when the row is not the one stored at its place, or its key cannot say."""
        if self.key is not None:
            return self._keyed(self.key, position, row)
        stored = self._digests[position] if position < len(self._digests) else 0
        live = _comparable(row) if stored else None
        if live is not None and live != stored:
            raise DatasetError(
                f"{self.evaluation}: row {position} of the dataset, "
                f"{_shown(row)}, is not the row stored at its place: the dataset's "
                f"order or rows changed since, and resuming would mix them; {_WHAT_TO_DO}"
            )
        return position

    def _keyed(self, key: str, position: int, row: dict[str, Any] | DatasetError) -> int:
        if self._unkeyed is not None:
            raise DatasetError(
                f"{self.evaluation}: the row stored as {self._unkeyed} has no column "
                f"{key!r}, so rows cannot be matched by that key; run it in a new --experiment"
            )
        if isinstance(row, DatasetError):
            raise row  # no key to match it by
        value = row[key]  # the key is one of the columns
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise DatasetError(
                f"{self.evaluation}: row {position}'s key {key}={_SHORT.repr(value)} is "
                f"{type(value).__name__}: a key must be text or a whole number"
            )
        text = _text(value)
        first = self._seen.setdefault(text, position)
        if first != position:
            raise DatasetError(
                f"{self.evaluation}: rows {first} and {position} of the dataset have the same "
                f"key {key}={_SHORT.repr(value)}: a key must identify one row"
            )
        item_id = self._ids.get(text)
        if item_id is None:
            item_id = self._ids[text] = self._free
            self._free += 1
        return item_id


def _shown(row: Any) -> str:
    """A row as a message shows it: its JSON text, cut after 100 characters."""
    text = encode_json(row)
    return text if len(text) <= 100 else f"{text[:99]}\u2026"


def _text(value: Any) -> str:
    return encode_json(value)


def _plain(value: Any) -> bool:
    """``value`` holds only what JSON has a type for (its stored form is itself)."""
    if isinstance(value, _SCALARS):
        return True
    if isinstance(value, (list, tuple)):
        return all(map(_plain, value))
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def _comparable(row: dict[str, Any] | DatasetError) -> int | None:
    """The digest of a row of the dataset, None for one that cannot be compared with
    its stored form (see the module docstring)."""
    try:
        return _digest(row) if isinstance(row, dict) and _plain(row) else None
    except (RecursionError, ValueError):  # too deep, too long to store: stored as {}
        return None


def _digest(row: dict[str, Any]) -> int:
    """A number that differs between rows that differ (1 if it would be 0)."""
    return hash(encode_json(_untagged(row))) or 1


def _untagged(value: Any) -> Any:
    """``value`` with dotevals 0.23's stored tuples (``{"__type__": "tuple", "data": [...]}``)
    as the lists this version stores."""
    if isinstance(value, dict):
        if value.keys() == {"__type__", "data"} and value["__type__"] == "tuple":
            return _untagged(value["data"])
        return {k: _untagged(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_untagged(v) for v in value]
    return value
