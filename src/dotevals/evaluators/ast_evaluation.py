"""``ast_evaluation``: a function call checked against its schema and expected arguments,
as the Berkeley Function Calling Leaderboard (BFCL) checks one.

::

    schema = [{"name": "area", "parameters": {
        "properties": {"shape": {"type": "string"}, "unit": {"type": "string"}},
        "required": ["shape"]}}]
    expected = [{"area": {"shape": ["circle", "disc"], "unit": ["", "cm"]}}]

    ast_evaluation({"area": {"shape": "Circle"}}, expected, schema).value           # True
    ast_evaluation({"area": {"shape": "circle", "unit": "m"}}, expected, schema).value  # False
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from dotevals.evaluators.decorator import evaluator
from dotevals.metrics import accuracy

__all__ = ["ast_evaluation"]

#: What strings are compared without: spaces and ``, . / - _ * ^``.
_IGNORED = re.compile(r"[ ,./\-_*^]")
#: An expected value that lets the argument be left out.
_OPTIONAL = ""


def _normalized(value: Any) -> Any:
    """``value`` with every string in it lower-cased, without the ignored characters
    and with ``'`` as ``"``."""
    if isinstance(value, str):
        return _IGNORED.sub("", value).lower().replace("'", '"')
    if isinstance(value, Mapping):
        return {key: _normalized(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalized(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return {_normalized(v) for v in value}
    return value


def _alternatives(expected: Any) -> list[Any]:
    """The values an argument may take: a list or set of them, or one value."""
    return list(expected) if isinstance(expected, (list, set, tuple, frozenset)) else [expected]


def _argument_matches(value: Any, expected: Any) -> bool:
    normalized = _normalized(value)
    return any(normalized == _normalized(alt) for alt in _alternatives(expected))


def _first(given: Any, what: str) -> Mapping[str, Any] | None:
    """The first of a list of mappings, or the mapping given; None when there is none."""
    first = given[0] if isinstance(given, (list, tuple)) and given else given
    if not first:
        return None
    if not isinstance(first, Mapping):
        raise TypeError(
            f"ast_evaluation: {what} must be a dict or a list of dicts, got {type(first).__name__}"
        )
    return first


@evaluator(metrics=accuracy())
def ast_evaluation(result: Any, expected: Any, schema: Any) -> bool:
    """Whether ``result`` is the function call that ``schema`` and ``expected`` describe.

    ``result`` is the call as ``{function name: {argument: value}}``; anything else
    (a string, several calls, arguments JSON cannot hold) gives False.
    ``schema`` is the function's description (``{"name": ..., "parameters":
    {"properties": {...}, "required": [...]}}``) or a list whose first entry is;
    ``expected`` is ``{function name: {argument: expected value}}``, or a list whose
    first entry is. The call matches when it names the described function, gives
    every required argument, and gives only arguments that the description and
    ``expected`` both name, each equal to its expected value. An expected value
    that is a list or set lists the values allowed (so a list argument's is a list
    of lists); ``""`` among them (or as the value) lets the argument be left out.
    Strings, wherever they are (in lists and dicts too), are compared lower-cased
    and without spaces and ``, . / - _ * ^``. An empty ``expected`` or ``schema``
    gives False; one that is neither a dict nor a list of dicts raises TypeError.
    """
    answer = _first(expected, "expected")
    description = _first(schema, "schema")
    if answer is None or description is None or not isinstance(result, Mapping):
        return False
    name = description.get("name")
    if len(result) != 1 or name not in result or not isinstance(result[name], Mapping):
        return False
    arguments = result[name]
    expected_arguments = next(iter(answer.values()))
    if not isinstance(expected_arguments, Mapping):
        raise TypeError(
            "ast_evaluation: expected must map the function's name to its arguments, "
            "{name: {argument: value}}"
        )
    parameters = description.get("parameters") or {}
    properties = parameters.get("properties") or {}
    if not set(parameters.get("required") or ()) <= set(arguments):
        return False
    try:
        json.dumps(arguments)
    except (TypeError, ValueError):
        return False
    for argument, value in arguments.items():
        if argument not in properties or argument not in expected_arguments:
            return False
        if not _argument_matches(value, expected_arguments[argument]):
            return False
    return all(
        argument in arguments or _OPTIONAL in _alternatives(allowed)
        for argument, allowed in expected_arguments.items()
    )
