"""Values as strict JSON text and back.

Values JSON has no type for are stored as the nearest JSON value: numpy scalars and
arrays as numbers and lists (anything with ``tolist()``), ``Decimal`` as a number,
sets as lists, anything else as its ``repr``. Non-finite floats, which strict JSON
cannot hold, are stored as ``{"$float": "NaN"}`` (or ``"Infinity"``, ``"-Infinity"``)
and read back as floats.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

__all__ = ["decode_json", "encode_json", "json_value"]

_FLOAT_TAG = "$float"
_FLOAT_TAG_BYTES = _FLOAT_TAG.encode()
#: The types JSON has as they are (an object of them is stored unchanged).
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


def encode_json(data: Any, *, escape_surrogates: bool = True) -> str:
    """Strict JSON text for ``data`` that UTF-8 can hold (see the module docstring).

    Without ``escape_surrogates``, a lone surrogate stays in the text as it is, for a
    caller that encodes a whole of which ``data`` is a part (see
    :mod:`~dotevals.storage.record_text`).
    """
    try:
        text = _ENCODE(data)
    except (TypeError, ValueError):  # non-string dict keys, circular references, NaN
        data = _plain(data, set())
        text = _ENCODE(data)
    if escape_surrogates and not text.isascii():
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
