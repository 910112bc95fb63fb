"""Model calls: an OpenAI-compatible provider with its response cache, its rate
limits per model and retries that know the SDKs' errors; the tokens calls use
and what they cost.

::

    from dotevals.llm import OpenAIModel, set_price, track

    llm = OpenAIModel("gpt-4o-mini", temperature=0)
    llm("What is 2 + 2?")           # in sync code: the text
    await llm("What is 2 + 2?")     # in an async evaluation

    set_price("my-model", input=0.5, output=1.5)  # USD per million tokens
    response = track(client.chat.completions.create(model="my-model", messages=...))

Under pytest, the ``llm`` fixture gives an ``OpenAIModel`` configured from the
command line or the ini file (``--model openai/gpt-4o-mini``, ``--model-base-url``,
``--cache``...); see ``docs/providers.md``. A row's usage is kept per model
(:class:`Usage`: input, output, cached-input and reasoning tokens), from the
provider, :func:`track` or :func:`add_usage` inside the row, or from
``Result(usage={model: Usage(...)})``; its cost comes from the price you set
(:func:`set_price`) or, with the extra ``dotevals[prices]``, from the
``genai-prices`` table (see ``docs/results.md``). :func:`current_row` tells model
code which row and epoch it is called for, with a seed of its own.

Every name here is imported on first use, as in :mod:`dotevals`: importing this
package costs nothing, and the ``openai`` SDK is imported only when a model is
first called.

Modules: :mod:`~dotevals.llm.row` (the row being scored: its epoch and seed, and
what its calls report), :mod:`~dotevals.llm.usage`, :mod:`~dotevals.llm.cost`,
:mod:`~dotevals.llm.retries` (which errors are retried, how long to wait),
:mod:`~dotevals.llm.limits` (requests and tokens per minute, concurrency per model),
:mod:`~dotevals.llm.cache` (the SQLite response cache), :mod:`~dotevals.llm.context`
(the model calls of many rows, added up) and :mod:`~dotevals.llm.openai` (the provider).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dotevals.llm.cache import ResponseCache, default_cache_path
    from dotevals.llm.context import CallTally
    from dotevals.llm.cost import Price, cost_of, price_of, set_price
    from dotevals.llm.limits import Limits, ModelLimiter, limiter_for
    from dotevals.llm.openai import GenerateSettings, OpenAIModel, OpenAIProvider
    from dotevals.llm.retries import is_retryable, retry_after
    from dotevals.llm.row import Row, RowCalls, current_epoch, current_row, record_settings
    from dotevals.llm.usage import Usage, add_usage, read_usage, track

__all__ = [
    "CallTally",
    "GenerateSettings",
    "Limits",
    "ModelLimiter",
    "OpenAIModel",
    "OpenAIProvider",
    "Price",
    "ResponseCache",
    "Row",
    "RowCalls",
    "Usage",
    "add_usage",
    "cost_of",
    "current_epoch",
    "current_row",
    "default_cache_path",
    "is_retryable",
    "limiter_for",
    "price_of",
    "read_usage",
    "record_settings",
    "retry_after",
    "set_price",
    "track",
]

#: Where each name lives, imported on first use.
_HOMES = {
    **dict.fromkeys(("ResponseCache", "default_cache_path"), "dotevals.llm.cache"),
    "CallTally": "dotevals.llm.context",
    **dict.fromkeys(("Price", "cost_of", "price_of", "set_price"), "dotevals.llm.cost"),
    **dict.fromkeys(("Limits", "ModelLimiter", "limiter_for"), "dotevals.llm.limits"),
    **dict.fromkeys(("GenerateSettings", "OpenAIModel", "OpenAIProvider"), "dotevals.llm.openai"),
    **dict.fromkeys(("is_retryable", "retry_after"), "dotevals.llm.retries"),
    **dict.fromkeys(
        ("Row", "RowCalls", "current_epoch", "current_row", "record_settings"), "dotevals.llm.row"
    ),
    **dict.fromkeys(("Usage", "add_usage", "read_usage", "track"), "dotevals.llm.usage"),
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'dotevals.llm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
