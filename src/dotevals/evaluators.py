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

The built-ins :func:`exact_match`, :func:`numeric_match`, :func:`valid_json`
and :func:`ast_evaluation` are evaluators aggregated with ``accuracy()``.
Evaluators from installed plugins (entry-point group ``dotevals.evaluators``)
are imported from here like the built-ins: ``from dotevals.evaluators import
fuzzy_match``; :data:`registry` holds them all by name.
"""

from __future__ import annotations

import ast
import functools
import inspect
import json
import math
import re
import textwrap
from collections.abc import Callable, Sequence
from decimal import Decimal
from numbers import Real
from typing import Any

from dotevals._util.registry import Registry
from dotevals.metrics import Metric, accuracy
from dotevals.models import Score

__all__ = [
    "evaluator",
    "get_metadata",
    "registry",
    "exact_match",
    "numeric_match",
    "valid_json",
    "ast_evaluation",
]

#: The keyword that names the score, on every evaluator call.
NAME = "name"


def _as_metric_list(metrics: Metric | Sequence[Metric] | None) -> list[Metric]:
    if metrics is None:
        raise TypeError(
            "evaluator() needs metrics=, a Metric or a list of Metrics, "
            "e.g. @evaluator(metrics=accuracy())"
        )
    if isinstance(metrics, Metric):
        return [metrics]
    if callable(metrics):  # used bare, as @evaluator, or given a factory like `accuracy`
        raise TypeError(
            f"evaluator() needs metrics=, a Metric or a list of Metrics, got {metrics!r}; "
            "write @evaluator(metrics=accuracy()), with the parentheses"
        )
    if isinstance(metrics, (str, bytes)) or not isinstance(metrics, Sequence):
        raise TypeError(
            f"evaluator(metrics=...) takes a Metric or a list of Metrics, "
            f"got {type(metrics).__name__}"
        )
    listed = list(metrics)
    if not listed:
        raise ValueError("evaluator(metrics=...) needs at least one Metric")
    for m in listed:
        if not isinstance(m, Metric):
            raise TypeError(
                f"evaluator(metrics=...) takes Metrics, got {m!r}; "
                "call the factory, e.g. accuracy() rather than accuracy"
            )
    return listed


def _arguments(
    signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


def get_metadata(func: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Each parameter of ``func`` mapped to its argument in the call ``func(*args, **kwargs)``.

    Defaults fill the parameters the call leaves out: for ``def f(a, b, c=None)``,
    ``get_metadata(f, 1, 2)`` is ``{"a": 1, "b": 2, "c": None}``. This is the
    metadata of the scores an evaluator returns.

    Raises:
        TypeError: the arguments do not fit ``func``'s parameters.
    """
    return _arguments(inspect.signature(func), args, kwargs)


def evaluator(
    metrics: Metric | Sequence[Metric] | None = None,
    name: str | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Score]]:
    """Turn a comparison function into one that returns a :class:`Score`.

    Args:
        metrics: The Metric, or list of Metrics, that aggregate the score over
            the rows. Required.
        name: The score's name; the function's ``__name__`` by default.

    The evaluator takes the function's arguments plus a keyword ``name=``, which
    names that call's score (``contains(r, e, name="capital")``). The score's
    ``value`` is what the function returns and its ``metadata`` maps each
    parameter name to the argument it was called with, defaults included (see
    :func:`get_metadata`). A function may declare ``name: str | None = None`` itself:
    it then always gets its default, as ``name=`` belongs to the evaluator.
    An ``async def`` function gives an ``async`` evaluator. The result can be
    pickled with cloudpickle, so it can be sent to worker processes.

    Raises:
        TypeError: ``metrics`` is missing or is not a Metric / list of Metrics,
            or the function has a ``name`` parameter without a default.
        ValueError: ``metrics`` is an empty list.
    """
    metric_list = _as_metric_list(metrics)
    if name is not None and not isinstance(name, str):
        raise TypeError(f"evaluator(name=...) takes a str, got {type(name).__name__}")

    def decorate(fn: Callable[..., Any]) -> Callable[..., Score]:
        signature = inspect.signature(fn)
        default_name = name if name is not None else fn.__name__
        own = signature.parameters.get(NAME)
        if own is not None and own.default is inspect.Parameter.empty:
            raise TypeError(
                f"{fn.__qualname__} has a parameter {NAME!r} without a default: an "
                f"evaluator's {NAME}= names the score, so rename that parameter"
            )

        def prepare(
            args: tuple[Any, ...], kwargs: dict[str, Any], name: Any
        ) -> tuple[str, dict[str, Any]]:
            """The call's score name and metadata; errors before the function runs."""
            if name is not None and (not isinstance(name, str) or not name):
                raise TypeError(f"{fn.__name__}(name=...) takes a non-empty str, got {name!r}")
            metadata = _arguments(signature, args, kwargs)
            metadata.pop(NAME, None)
            return name or default_name, metadata

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, name: str | None = None, **kwargs: Any) -> Score:
                score_name, metadata = prepare(args, kwargs, name)
                return Score(score_name, await fn(*args, **kwargs), list(metric_list), metadata)

            wrapper: Callable[..., Any] = async_wrapper
        else:

            @functools.wraps(fn)
            def wrapper(*args: Any, name: str | None = None, **kwargs: Any) -> Score:
                score_name, metadata = prepare(args, kwargs, name)
                return Score(score_name, fn(*args, **kwargs), list(metric_list), metadata)

        if own is None:
            keyword = inspect.Parameter(
                NAME, inspect.Parameter.KEYWORD_ONLY, default=None, annotation="str | None"
            )
            params = list(signature.parameters.values())
            at = next(
                (i for i, p in enumerate(params) if p.kind is inspect.Parameter.VAR_KEYWORD),
                len(params),
            )
            wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
                parameters=[*params[:at], keyword, *params[at:]]
            )
        return wrapper

    return decorate


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
        return number if math.isfinite(number) else None
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

    The numbers are compared with ``math.isclose(rel_tol=1e-9, abs_tol=1e-9)``.
    Anything else (words, several numbers, ``None``, NaN or infinite values,
    numbers too big for a float) makes the match False; it never raises.
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
def ast_evaluation(result: Any, expected: str | None = None) -> bool:
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
for _builtin in (exact_match, numeric_match, valid_json, ast_evaluation):
    registry.register(_builtin.__name__, _builtin)


__getattr__ = registry.module_getattr(__name__)
