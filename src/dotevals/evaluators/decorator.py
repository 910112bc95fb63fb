"""The ``@evaluator`` decorator: a comparison function made to return a Score."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from dotevals.metrics import Metric
from dotevals.models import Score

__all__ = ["evaluator", "get_metadata"]

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
            the rows. Required; an empty list gives scores no metric aggregates
            (stored and shown with each row, absent from the summary's metrics).
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
