"""The JSON Schema of a stored record, as ``dotevals schema`` prints it.

A record is one line of a ``json://`` store's ``.jsonl`` file, or the ``record``
column of a ``sqlite://`` store's ``records`` table (whose ``traceback`` column
holds the traceback). It describes the records of every store format
(:data:`~dotevals.storage.base.FORMAT`): a field a format added is optional,
and a record without it reads as its default (``epoch`` 0, no duration, no usage).
Non-finite floats are stored as ``{"$float": "NaN"}``, ``"Infinity"`` or
``"-Infinity"`` wherever a number may be.
"""

from __future__ import annotations

from typing import Any

from dotevals.storage.base import FORMAT
from dotevals.storage.encoding import MAX_EPOCH

__all__ = ["record_schema"]

_NON_FINITE = {
    "type": "object",
    "properties": {"$float": {"enum": ["NaN", "Infinity", "-Infinity"]}},
    "required": ["$float"],
    "additionalProperties": False,
}
_NUMBER = {"anyOf": [{"type": "number"}, _NON_FINITE]}
_COUNT = {"type": "integer", "minimum": 0}
_TEXT_OR_NULL = {"type": ["string", "null"]}


def _by_model(value: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": value}


def record_schema() -> dict[str, Any]:
    """The schema (JSON Schema draft 2020-12) every stored record meets."""
    usage = {
        "type": "object",
        "description": "tokens of one model: input counts the cached ones, output the "
        "reasoning ones",
        "properties": {
            name: _COUNT
            for name in (
                "input_tokens",
                "output_tokens",
                "cached_input_tokens",
                "reasoning_tokens",
            )
        },
        "additionalProperties": _COUNT,
    }
    score = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "value": {"description": "any JSON value the evaluation gave"},
            "metrics": {
                "type": "array",
                "description": "a metric's name, or its factory call",
                "items": {
                    "anyOf": [
                        {"type": "string"},
                        {
                            "type": "object",
                            "properties": {
                                "name": {"type": "string"},
                                "args": {"type": "array"},
                                "kwargs": {"type": "object"},
                            },
                            "required": ["name"],
                        },
                    ]
                },
            },
            "metadata": {"type": "object"},
        },
        "required": ["name"],
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "dotevals record",
        "description": "One sample of one evaluation: a dataset row's result in one epoch "
        f"(store formats 1 to {FORMAT}).",
        "type": "object",
        "properties": {
            "item_id": {"type": "integer", "minimum": 0, "description": "the row's place"},
            "epoch": {
                "type": "integer",
                "minimum": 0,
                "maximum": MAX_EPOCH,
                "default": 0,
                "description": "the row's repeat, from 0",
            },
            "dataset_row": {"type": "object", "description": "the row's arguments"},
            "result": {
                "type": "object",
                "properties": {
                    "scores": {"type": "array", "items": score},
                    "prompt": {"description": "any JSON value"},
                    "error": _TEXT_OR_NULL,
                    "model_response": {"description": "any JSON value"},
                    "usage": _by_model(usage),
                },
            },
            "error": _TEXT_OR_NULL,
            "timestamp": {**_NUMBER, "description": "when it was stored, Unix seconds"},
            "traceback": {"type": "string"},
            "duration": {**_NUMBER, "description": "seconds the row took, retries included"},
            "cost": {**_by_model(_NUMBER), "description": "USD by model (priced models)"},
            "settings": {**_by_model({"type": "object"}), "description": "model settings"},
        },
        "required": ["item_id", "dataset_row", "result"],
    }
