"""How records and bookkeeping become strict JSON text, and how stored text is checked
on the way back (values as JSON: :mod:`~dotevals.storage.json_text`; a record's
text: :mod:`~dotevals.storage.record_text`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from dotevals.llm.usage import MAX_TOKENS
from dotevals.models import Record, Result
from dotevals.storage.json_text import decode_json, encode_json, json_value
from dotevals.storage.record_text import record_text

__all__ = [
    "MAX_ROW_GAP",
    "decode_json",
    "decode_record",
    "encode_json",
    "encode_record",
    "encoded",
    "json_value",
    "storable",
    "stored_text",
]

MAX_ROW_GAP = 1_000_000
"""How far a stored ``item_id`` may lie past the records before it; rows are stored in
dataset order, so a larger gap is a damaged record (and would cost memory per row)."""


def storable(record: Record) -> Record:
    """``record`` with its score values as storage gives them back, so that a metric
    sees the same values live and after a resume; a record whose values cannot be
    stored becomes that row's error."""
    try:
        for score in record.result.scores:
            score.value = json_value(score.value)
    except Exception as exc:  # e.g. RecursionError, a __repr__ that raises
        return _unstorable(record, exc)
    return record


def encode_record(record: Record) -> str:
    """The stored text of ``record``; a record that cannot be encoded is stored as its
    row's error."""
    try:
        text = record_text(record)
        return text if text is not None else encode_json(record.to_dict())
    except Exception as exc:  # one row's odd value costs only that row
        return encode_json(_unstorable(record, exc).to_dict())


def encoded(record: Record) -> Record:
    """``record`` with its stored text in ``stored_text``, made where the row ran (in a
    worker), so that the main process only writes it. It is the text
    :func:`encode_record` makes, also after :func:`storable` (which only gives values
    the form that text has); a record that cannot be encoded gets its row's error."""
    record.stored_text = encode_record(record)
    return record


def stored_text(record: Record, with_traceback: bool = True) -> str:
    """The text storage writes for ``record``: its ``stored_text`` when it has one,
    else :func:`encode_record`. Without ``with_traceback``, the text leaves the
    traceback out (for a backend that keeps it apart)."""
    if record.traceback is not None and not with_traceback:
        return encode_record(dataclasses.replace(record, traceback=None))
    return record.stored_text if record.stored_text is not None else encode_record(record)


def _unstorable(record: Record, exc: BaseException) -> Record:
    """The record of a row whose result cannot be stored: its error, with what the row
    used and cost (spent all the same)."""
    reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    error = f"StorageError: this row's result cannot be stored ({reason})"
    row = record.dataset_row
    try:
        encode_json(row)
    except Exception:  # the row itself is what cannot be stored
        row = {}
    return Record(
        Result(usage=record.result.usage),
        record.item_id,
        row,
        error,
        record.timestamp,
        epoch=record.epoch,
        duration=record.duration,
        cost=record.cost,
        model_calls=record.model_calls,
    )


def decode_record(text: str | bytes, before: int) -> Record:
    """The Record stored as ``text``; ValueError saying what is wrong if it is not one.

    ``before`` is at least the number of records stored before this one.
    """
    data = decode_json(text)
    _check(isinstance(data, dict), "not a JSON object")
    item_id = data.get("item_id")
    _check(
        type(item_id) is int and 0 <= item_id <= before + MAX_ROW_GAP,
        f"item_id {item_id!r} is not a row number",
    )
    result = data.get("result")
    _check(isinstance(result, dict), "result is not an object")
    scores = result.get("scores", [])
    _check(
        isinstance(scores, list)
        and all(isinstance(s, dict) and isinstance(s.get("name"), str) for s in scores),
        "scores are not a list of named scores",
    )
    _check(isinstance(data.get("dataset_row"), dict), "dataset_row is not an object")
    for value, what in ((data.get("error"), "error"), (result.get("error"), "result error")):
        _check(value is None or isinstance(value, str), f"{what} is not text")
    _check(isinstance(data.get("timestamp", 0.0), (int, float)), "timestamp is not a number")
    traceback = data.get("traceback")
    _check(traceback is None or isinstance(traceback, str), "traceback is not text")
    model_calls = data.get("model_calls")
    _check(model_calls is None or isinstance(model_calls, dict), "model_calls is not an object")
    epoch = data.get("epoch", 0)
    _check(type(epoch) is int and 0 <= epoch <= MAX_EPOCH, f"epoch {epoch!r} is not an epoch")
    duration = data.get("duration")
    _check(duration is None or _is_number(duration), "duration is not a number")
    _check(_by_name(data.get("cost", {}), _is_number), "cost is not {model: number}")
    _check(_by_name(data.get("settings", {}), _is_object), "settings are not {model: object}")
    _check(_by_name(result.get("usage", {}), _is_usage), "usage is not {model: token counts}")
    try:
        return Record.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"{type(exc).__name__}: {exc}") from exc


#: The most epochs a row may have: a larger epoch number is a damaged record.
MAX_EPOCH = 1_000_000


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_object(value: Any) -> bool:
    return isinstance(value, dict)


def _is_usage(value: Any) -> bool:
    """A stored Usage: an object of token counts (whole numbers >= 0)."""
    return isinstance(value, dict) and all(
        isinstance(k, str) and type(v) is int and 0 <= v < MAX_TOKENS for k, v in value.items()
    )


def _by_name(value: Any, check: Any) -> bool:
    """``value`` is an object whose every value passes ``check``, keyed by text."""
    return isinstance(value, dict) and all(
        isinstance(k, str) and check(v) for k, v in value.items()
    )


def _check(condition: bool, reason: str) -> None:
    if not condition:
        raise ValueError(reason)
