"""A record's stored JSON text, made from its parts.

Every row is encoded on its own, and encoding is most of what storing a row
costs. :func:`record_text` gives the text ``encode_json(record.to_dict())``
gives, character for character, in about two thirds of the time: the record's
keys are written as they are, plain values (text, whole numbers, finite
floats, booleans, None, and flat objects of them) without a call into the
JSON encoder, and anything else through it
(:func:`~dotevals.storage.json_text.encode_json`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from json.encoder import encode_basestring as _string
from typing import Any

from dotevals.llm.usage import Usage
from dotevals.models import Record, Score
from dotevals.storage.json_text import encode_json

__all__ = ["record_text"]


def _encoded(value: Any) -> str:
    """The encoder's text of a part; a lone surrogate is left in it for
    :func:`record_text` to see, so that the whole record is escaped as the encoder
    escapes a whole record."""
    return encode_json(value, escape_surrogates=False)


def _float(value: float) -> str:
    """A float's text (``repr``, as the encoder's: the caller has checked its type)."""
    if math.isfinite(value):
        return repr(value)
    return _encoded(value)  # tagged: strict JSON has no NaN


_PLAIN: dict[type, Callable[[Any], str]] = {
    str: _string,
    int: repr,  # of an int itself (values are looked up by their exact type)
    float: _float,
    bool: lambda value: "true" if value else "false",
    type(None): lambda _: "null",
}


def _value(value: Any) -> str:
    """The JSON text of one value."""
    plain = _PLAIN.get(type(value))
    if plain is not None:
        return plain(value)
    if type(value) is dict:
        return _object(value)
    return _encoded(value)


def _object(data: dict[Any, Any]) -> str:
    """A flat object of plain values here; any other through the encoder, whole (which
    also cuts cycles)."""
    if not data:
        return "{}"
    if len(data) == 1:  # the usual dataset row, or a cost of one model
        [(key, value)] = data.items()
        plain = _PLAIN.get(type(value))
        if plain is not None and type(key) is str:
            return f"{{{_string(key)}: {plain(value)}}}"
    members = []
    for key, value in data.items():
        plain = _PLAIN.get(type(value))
        if plain is None or type(key) is not str:
            return _encoded(data)
        members.append(f"{_string(key)}: {plain(value)}")
    return "{" + ", ".join(members) + "}"


def _score(score: Score) -> str:
    name, metadata, metrics = score.name, score.metadata, score.metrics
    if len(metrics) == 1:  # the usual case: one metric
        listed = _value(metrics[0].spec)
    else:
        listed = ", ".join([_value(metric.spec) for metric in metrics])
    return (
        f'{{"name": {_string(name) if type(name) is str else _value(name)}, '
        f'"value": {_value(score.value)}, "metrics": [{listed}], '
        f'"metadata": {"{}" if type(metadata) is dict and not metadata else _value(metadata)}}}'
    )


def _usage(used: Usage) -> str:
    text = f'{{"input_tokens": {used.input_tokens}, "output_tokens": {used.output_tokens}'
    if used.cached_input_tokens:
        text += f', "cached_input_tokens": {used.cached_input_tokens}'
    if used.reasoning_tokens:
        text += f', "reasoning_tokens": {used.reasoning_tokens}'
    return text + "}"


def _by_model(usage: dict[str, Usage]) -> str:
    """Usage by model (one model, the usual case, without a list)."""
    if len(usage) == 1:
        [(model, used)] = usage.items()
        return f"{{{_string(model)}: {_usage(used)}}}"
    return "{" + ", ".join([f"{_string(m)}: {_usage(u)}" for m, u in usage.items()]) + "}"


#: The middle of the text of a record whose result has no error, prompt or response.
_NOTHING_ELSE = '"prompt": null, "error": null, "model_response": null'


def record_text(record: Record) -> str | None:
    """``encode_json(record.to_dict())``; None when that text has to escape what UTF-8
    cannot hold (a lone surrogate), which only the whole record's encoding does."""
    result = record.result
    listed = result.scores
    scores = _score(listed[0]) if len(listed) == 1 else ", ".join([_score(s) for s in listed])
    if result.prompt is None and result.error is None and result.model_response is None:
        middle = _NOTHING_ELSE
    else:
        middle = (
            f'"prompt": {_value(result.prompt)}, "error": {_value(result.error)}, '
            f'"model_response": {_value(result.model_response)}'
        )
    if result.usage:
        middle += f', "usage": {_by_model(result.usage)}'
    item_id, row, error = record.item_id, record.dataset_row, record.error
    text = (
        f'{{"item_id": {repr(item_id) if type(item_id) is int else _value(item_id)}, '
        f'"dataset_row": {_object(row) if type(row) is dict else _value(row)}, '
        f'"result": {{"scores": [{scores}], {middle}}}, '
        f'"error": {"null" if error is None else _value(error)}, '
        f'"timestamp": {_value(record.timestamp)}'
    )
    if record.traceback is not None:
        text += f', "traceback": {_value(record.traceback)}'
    if record.epoch:
        text += f', "epoch": {_value(record.epoch)}'
    if record.duration is not None:
        text += f', "duration": {_value(record.duration)}'
    if record.cost:
        text += f', "cost": {_object(record.cost)}'
    if record.settings:
        text += f', "settings": {_value(record.settings)}'
    if record.model_calls is not None:
        text += f', "model_calls": {_value(record.model_calls)}'
    text += "}"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return None
    return text
