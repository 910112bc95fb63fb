"""How records and bookkeeping become strict JSON text, and how stored text is checked
on the way back.

Values JSON has no type for are stored as the nearest JSON value: numpy scalars and
arrays as numbers and lists (anything with ``tolist()``), ``Decimal`` as a number,
sets as lists, anything else as its ``repr``. Non-finite floats, which strict JSON
cannot hold, are stored as ``{"$float": "NaN"}`` (or ``"Infinity"``, ``"-Infinity"``)
and read back as floats.
"""

from __future__ import annotations

import dataclasses
import json
import math
from decimal import Decimal
from typing import Any

from dotevals.llm.usage import MAX_TOKENS
from dotevals.models import Record, Result

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

_FLOAT_TAG = "$float"
_FLOAT_TAG_BYTES = _FLOAT_TAG.encode()
_JSON_SCALARS = (str, int, bool, float, type(None))
_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def _json_default(value: Any) -> Any:
    """The JSON value stored for an object JSON has no type for."""
    tolist = getattr(value, "tolist", None)
    if callable(tolist):  # numpy scalars and arrays, tensors
        return tolist()
    if isinstance(value, Decimal):
        return (
            int(value) if value.is_finite() and value == value.to_integral_value() else float(value)
        )
    if isinstance(value, (set, frozenset)):
        try:
            return sorted(value)
        except TypeError:
            return list(value)
    return repr(value)


_ENCODE = json.JSONEncoder(default=_json_default, ensure_ascii=False, allow_nan=False).encode
_ENCODE_ASCII = json.JSONEncoder(default=_json_default, allow_nan=False).encode


def encode_json(data: Any) -> str:
    """Strict JSON text for ``data`` that UTF-8 can hold (see the module docstring)."""
    try:
        text = _ENCODE(data)
    except (TypeError, ValueError):  # non-string dict keys, circular references, NaN
        data = _plain(data, set())
        text = _ENCODE(data)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: keep it as a \u escape
            text = _ENCODE_ASCII(data)
    return text


def _plain(value: Any, path: set[int]) -> Any:
    """``value`` with dict keys made strings, cycles cut and non-finite floats tagged."""
    if isinstance(value, float):
        return value if math.isfinite(value) else {_FLOAT_TAG: _NON_FINITE[repr(float(value))]}
    if isinstance(value, _JSON_SCALARS):
        return value
    if id(value) in path:
        return "..."
    path = path | {id(value)}
    if isinstance(value, dict):
        return {
            k if isinstance(k, _JSON_SCALARS) else repr(k): _plain(v, path)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_plain(v, path) for v in value]
    return _plain(_json_default(value), path)


def _tagged_float(data: dict[str, Any]) -> Any:
    if len(data) == 1 and data.get(_FLOAT_TAG) in _NON_FINITE.values():
        return float(data[_FLOAT_TAG])
    return data


def decode_json(text: str | bytes) -> Any:
    """The value :func:`encode_json` stored as ``text``."""
    tag = _FLOAT_TAG if isinstance(text, str) else _FLOAT_TAG_BYTES
    if tag in text:  # type: ignore[operator]
        return json.loads(text, object_hook=_tagged_float)
    return json.loads(text)


def json_value(value: Any) -> Any:
    """``value`` as storage gives it back."""
    if type(value) in _JSON_SCALARS:
        return value
    return decode_json(encode_json(value))


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
        return encode_json(record.to_dict())
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
