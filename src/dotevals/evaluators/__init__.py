"""Evaluators: comparison functions that return a :class:`~dotevals.models.Score`.

An evaluator is a plain function that compares a model's output with what was
expected and returns a value (usually a bool or a number). :func:`evaluator`
wraps it so that it returns a ``Score`` named after the function, carrying the
metrics that aggregate it and the call's arguments as metadata::

    @evaluator(metrics=accuracy())
    def contains(result: str, expected: str) -> bool:
        return expected in result

    contains("Paris, France", "Paris")
    # Score(name="contains", value=True, metrics=[Metric("accuracy")],
    #       metadata={"result": "Paris, France", "expected": "Paris"})
    contains("Paris, France", "Paris", name="capital").name  # "capital"

The built-ins :func:`exact_match`, :func:`numeric_match`, :func:`valid_json`,
:func:`python_ast_match` and :func:`~dotevals.evaluators.ast_evaluation.ast_evaluation`
(a function call checked against its schema) are evaluators aggregated with
``accuracy()``.
Evaluators from installed plugins (entry-point group ``dotevals.evaluators``)
are imported from here like the built-ins: ``from dotevals.evaluators import
fuzzy_match``; :data:`registry` holds them all by name.
"""

from __future__ import annotations

import ast
import json
import math
import re
import textwrap
from collections.abc import Callable
from decimal import Decimal
from numbers import Real
from typing import Any

from dotevals._util.registry import Registry
from dotevals.evaluators.ast_evaluation import ast_evaluation
from dotevals.evaluators.decorator import evaluator, get_metadata
from dotevals.metrics import accuracy
from dotevals.models import Score

__all__ = [
    "evaluator",
    "get_metadata",
    "registry",
    "exact_match",
    "numeric_match",
    "valid_json",
    "python_ast_match",
    "ast_evaluation",
]


@evaluator(metrics=accuracy())
def exact_match(result: Any, expected: Any) -> bool:
    """``result == expected``, as they are.

    No normalisation: strings are compared exactly (case, whitespace and
    punctuation count), and ``"42"`` does not match ``42``. Use
    :func:`numeric_match` for numbers.
    """
    return bool(result == expected)


_CURRENCY = "$€£"
_THOUSANDS = ", \u00a0\u202f"  # comma, space, no-break space, narrow no-break space
_NUMBER = re.compile(
    rf"""
    (?P<sign1>[+-]?)
    (?:(?P<cur1>[{_CURRENCY}])\s*)?
    (?P<sign2>[+-]?)
    (?P<body>
        (?:\d{{1,3}}(?P<sep>[{_THOUSANDS}])\d{{3}}(?:(?P=sep)\d{{3}})*|\d+)
        (?:\.\d*)?                                # 1,000 / 1 000 / 1000 / 1000. / 1000.5
        |\.\d+                                     # .5
    )
    (?P<exp>[eE][+-]?\d+)?
    (?:\s*(?P<cur2>[{_CURRENCY}]))?
    (?:\s*(?P<pct>%))?
    """,
    re.VERBOSE,
)


def _to_number(value: Any) -> float | None:
    """``value`` as a float, or None when it is not a number (see numeric_match)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (Real, Decimal)):
        try:
            number = float(value)
        except (OverflowError, ValueError):
            return None
        return None if math.isnan(number) else number
    if not isinstance(value, str):
        return None
    match = _NUMBER.fullmatch(value.strip())
    if match is None:
        return None
    if match["sign1"] and match["sign2"]:
        return None
    if match["cur1"] and match["cur2"]:
        return None
    if match["pct"] and (match["cur1"] or match["cur2"]):
        return None
    sign = match["sign1"] or match["sign2"]
    try:
        body = match["body"].replace(match["sep"], "") if match["sep"] else match["body"]
        number = float(sign + body + (match["exp"] or ""))
    except (OverflowError, ValueError):
        return None
    return number if math.isfinite(number) else None


@evaluator(metrics=accuracy())
def numeric_match(result: Any, expected: Any) -> bool:
    """Whether ``result`` and ``expected`` are the same number.

    Each side may be a number (int, float, Decimal, Fraction; not a bool), or a
    string holding one number, which may have:

    - surrounding whitespace: ``" 42 "``;
    - a sign: ``"-3"``, ``"+3"``;
    - thousands separators in groups of three, all commas or all spaces (a
      plain, no-break or narrow no-break space): ``"1,234"``, ``"1 234 567"``
      (``"1,5"`` is not a number, so European decimal commas never match);
    - a decimal part and/or an exponent: ``"1000.0"``, ``".5"``, ``"1e3"``;
    - one currency symbol ``$``, ``€`` or ``£`` before or after the number:
      ``"$5"``, ``"-$5"``, ``"5 €"``;
    - a trailing ``%``, which is dropped: ``"50%"`` matches ``50`` (not ``0.5``).

    The numbers are compared with ``math.isclose(rel_tol=1e-9, abs_tol=1e-9)``:
    an infinite number (``float("inf")``, ``Decimal("-Infinity")``) matches the
    same infinity only. Anything else (words, several numbers, ``None``, NaN,
    strings spelling infinity or too big for a float) makes the match False; it
    never raises.
    """
    a, b = _to_number(result), _to_number(expected)
    if a is None or b is None:
        return False
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


@evaluator(metrics=accuracy())
def valid_json(result: Any, schema: dict[str, Any] | bool | None = None) -> bool:
    """Whether ``result`` is a JSON document and, given ``schema``, matches it.

    ``result`` is strict JSON text (a ``str``, or UTF-8 ``bytes``): ``NaN`` and
    ``Infinity`` are rejected, and no markdown code fence is stripped. Any other
    value but ``None`` is checked as its ``str()``: ``42`` and ``[1, 2]`` are
    valid, while ``None``, ``True`` and ``{"a": 1}`` (whose ``str()`` uses
    single quotes) are not.
    ``schema`` is a JSON Schema, checked with ``jsonschema``. A result that is
    not JSON or does not match the schema gives False; an invalid *schema*
    raises ``jsonschema.exceptions.SchemaError``.
    """
    validator = None
    if schema is not None:
        import jsonschema

        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)  # type: ignore[arg-type]  # true and false are schemas too
        validator = cls(schema)
    if result is None:
        return False
    text = result if isinstance(result, (str, bytes, bytearray)) else str(result)
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
        return False
    return validator is None or bool(validator.is_valid(document))


_FENCE = re.compile(r"\s*```[^\n`]*\n(?P<code>.*?)\n?[ \t]*```\s*", re.DOTALL)


def _parse_python(source: str) -> ast.Module | None:
    """The module ``source`` parses to, dedented if it only parses that way; else None."""
    for attempt in (source, textwrap.dedent(source)):
        try:
            return ast.parse(attempt)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
    return None


@evaluator(metrics=accuracy())
def python_ast_match(result: Any, expected: str | None = None) -> bool:
    """Whether ``result`` is valid Python and, given ``expected``, the same code.

    A markdown code fence around the whole of ``result`` (```` ```python ````,
    ```` ```py ```` or a bare ```` ``` ````) is stripped first; ``expected`` is
    not fence-stripped. A side that only parses once dedented (a uniformly
    indented snippet) is dedented. With ``expected``, both must parse and have
    equal ASTs (``ast.dump`` without line/column attributes): formatting,
    whitespace and comments do not matter, but names, literals and docstrings
    do. Anything that is not a string, or does not parse, gives False.
    """
    if not isinstance(result, str):
        return False
    fenced = _FENCE.fullmatch(result)
    tree = _parse_python(fenced["code"] if fenced else result)
    if tree is None:
        return False
    if expected is None:
        return True
    if not isinstance(expected, str):
        return False
    expected_tree = _parse_python(expected)
    if expected_tree is None:
        return False
    try:
        return ast.dump(tree, include_attributes=False) == ast.dump(
            expected_tree, include_attributes=False
        )
    except RecursionError:
        return False


class EvaluatorRegistry(Registry[Callable[..., Score]]):
    """Evaluators by name; see :class:`~dotevals._util.registry.Registry`."""

    def list_evaluators(self) -> list[str]:
        """The names of every evaluator, built-in or from a plugin, sorted."""
        return list(self)


#: Every evaluator by name: the built-ins, then those of the ``dotevals.evaluators``
#: entry points. ``registry.get(name)`` is None for an unknown name.
registry = EvaluatorRegistry("dotevals.evaluators", "evaluator")
for _builtin in (exact_match, numeric_match, valid_json, python_ast_match, ast_evaluation):
    registry.register(_builtin.__name__, _builtin)


__getattr__ = registry.module_getattr(__name__)
