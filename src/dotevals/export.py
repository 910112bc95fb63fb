"""Stored records as flat rows: ``dotevals export`` (CSV, JSON Lines) and ``dotevals.load``.

A flat row is one sample, a row in one epoch. It has the columns
``evaluation``, ``item_id`` and ``epoch``; then the dataset row's columns and
one column per score (named after it); then ``prompt``, ``model_response``,
``error``, ``duration`` (seconds), the tokens the sample used over all its
models (``input_tokens``, ``output_tokens``, ``cached_input_tokens``,
``reasoning_tokens``), its ``cost`` (USD, of the models with a price), the
``models`` it used and ``timestamp`` (Unix seconds, as stored). A dataset
column named like one of those fixed columns is exported as ``row.NAME``, and a
score named like a fixed or dataset column as ``score.NAME``.

JSON Lines are strict JSON: NaN and the infinities are written as storage keeps
them, ``{"$float": "NaN"}`` (``"Infinity"``, ``"-Infinity"``), and control
characters as ``\\u`` escapes. CSV is RFC 4180's (lines end with CRLF); lists and
dicts are JSON text, and a text cell (a header too) that a spreadsheet would take
for a formula, one starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return, is written with a ``'`` before it, unless it is a number (``-0.5``);
numbers are written as numbers.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal, TextIO, overload

from dotevals._declare.row_errors import error_message
from dotevals._report.format import printable
from dotevals.models import Record
from dotevals.storage import Storage
from dotevals.storage.encoding import encode_json
from dotevals.storage.location import default_storage
from dotevals.storage.reading import evaluation_names, find_experiment, open_storage

if TYPE_CHECKING:
    import pandas

__all__ = ["FORMATS", "flatten", "load", "to_frame", "write_rows"]

FORMATS = ("csv", "jsonl")
_LEADING = ("evaluation", "item_id", "epoch")
_TOKENS = ("input_tokens", "output_tokens", "cached_input_tokens", "reasoning_tokens")
_TRAILING = (
    "prompt",
    "model_response",
    "error",
    "duration",
    *_TOKENS,
    "cost",
    "models",
    "timestamp",
)
_FIXED = frozenset(_LEADING + _TRAILING)


def flatten(evaluation: str, record: Record) -> dict[str, Any]:
    """One record as a flat row (see the module docstring for its columns)."""
    row: dict[str, Any] = {
        "evaluation": evaluation,
        "item_id": record.item_id,
        "epoch": record.epoch,
    }
    for name, value in record.dataset_row.items():
        row[f"row.{name}" if name in _FIXED else name] = value
    for score in record.result.scores:
        taken = score.name in _FIXED or score.name in row
        row[f"score.{score.name}" if taken else score.name] = score.value
    row["prompt"] = record.result.prompt
    row["model_response"] = record.result.model_response
    row["error"] = error_message(record) if record.failed else None
    row["duration"] = record.duration
    usage = record.result.usage
    for name in _TOKENS:
        row[name] = sum(getattr(u, name) for u in usage.values()) if usage else None
    row["cost"] = sum(record.cost.values()) if record.cost else None
    row["models"] = sorted(usage) if usage else None
    row["timestamp"] = record.timestamp
    return row


def column_names(rows: Iterable[dict[str, Any]]) -> list[str]:
    """Every column of ``rows``: the fixed ones around the others, in the order first seen."""
    middle = dict.fromkeys(key for row in rows for key in row if key not in _FIXED)
    return [*_LEADING, *middle, *_TRAILING]


def _flat_rows(storage: Storage, experiment: str, names: Sequence[str]) -> Iterator[dict]:
    for name in names:
        for record in storage.load_records(experiment, name):
            yield flatten(name, record)


#: How a cell a spreadsheet would run as a formula starts (OWASP, "CSV Injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _csv_cell(value: Any) -> Any:
    """Lists and dicts as JSON, text that would start a formula after a ``'``; the csv
    module writes the rest (None as empty)."""
    if isinstance(value, (dict, list, tuple)):
        return encode_json(value)
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return value if _NUMBER.fullmatch(value) else "'" + value
    return value


def write_rows(
    storage: Storage, experiment: str, names: Sequence[str], format: str, out: TextIO
) -> int:
    """Write the records of ``names`` to ``out`` as CSV (with a header) or JSON Lines,
    one line per row in dataset order, evaluation after evaluation; the row count.

    CSV reads the records twice, to know every column before the header; one
    evaluation's records are in memory at a time.
    """
    rows = _flat_rows(storage, experiment, names)
    count = 0
    if format == "jsonl":
        for row in rows:
            out.write(printable(encode_json(row)) + "\n")
            count += 1
        return count
    columns = column_names(_flat_rows(storage, experiment, names))
    writer = csv.DictWriter(out, columns)  # lines end with CRLF: a CR in a cell is quoted
    writer.writerow({name: _csv_cell(name) for name in columns})  # the header
    for row in rows:
        writer.writerow({key: _csv_cell(value) for key, value in row.items()})
        count += 1
    return count


@overload
def load(
    experiment: str,
    storage: str | Storage | None = ...,
    *,
    evaluation: str | None = ...,
    as_frame: Literal[False] = ...,
) -> dict[str, list[Record]]: ...
@overload
def load(
    experiment: str,
    storage: str | Storage | None = ...,
    *,
    evaluation: str | None = ...,
    as_frame: Literal[True],
) -> pandas.DataFrame: ...
def load(
    experiment: str,
    storage: str | Storage | None = None,
    *,
    evaluation: str | None = None,
    as_frame: bool = False,
) -> dict[str, list[Record]] | pandas.DataFrame:
    """The stored records of an experiment, by evaluation::

        records = dotevals.load("baseline", storage="sqlite://results.db")
        records["eval_math"][0].result.scores  # each row's newest record, in dataset order

    Args:
        experiment: the experiment's name.
        storage: a storage URL or an open :class:`~dotevals.storage.Storage`; by
            default the project's, where pytest stores (``dotevals_storage`` in the
            project's pytest configuration file, else ``.dotevals`` in its root).
        evaluation: only this evaluation.
        as_frame: a pandas DataFrame instead (see :func:`to_frame`); needs the
            extra ``dotevals[pandas]``.

    Raises:
        ExperimentNotFoundError, ConfigurationError (an unknown evaluation),
        StorageError (no storage there).
    """
    if storage is None:
        storage = default_storage()
    url = storage if isinstance(storage, str) else storage.url
    with open_storage(storage) as opened:
        find_experiment(opened, url, experiment)
        names = evaluation_names(opened, url, experiment, evaluation)
        records = {name: opened.load_records(experiment, name) for name in names}
    return to_frame(records) if as_frame else records


def to_frame(records: dict[str, list[Record]]) -> pandas.DataFrame:
    """Records by evaluation as a DataFrame: one row per record, the columns of
    ``dotevals export`` (a column per score, values as stored)."""
    try:
        import pandas
    except ImportError:
        raise ImportError(
            "a DataFrame of dotevals results needs pandas: pip install 'dotevals[pandas]'"
        ) from None
    rows = [flatten(name, record) for name, group in records.items() for record in group]
    return pandas.DataFrame.from_records(rows, columns=column_names(rows))
