"""Calling real models: an OpenAI-compatible provider, its response cache, its rate
limits per model and the retries that know the SDKs' errors.

::

    from dotevals.llm import OpenAIModel

    llm = OpenAIModel("gpt-4o-mini", temperature=0)
    llm("What is 2 + 2?")           # in sync code: the text
    await llm("What is 2 + 2?")     # in an async evaluation

Under pytest, the ``llm`` fixture gives one, configured from the command line or
the ini file (``--model openai/gpt-4o-mini``, ``--model-base-url``, ``--cache``...).
See ``docs/providers.md``.

Every name here is imported on first use, as in :mod:`dotevals`: importing this
package costs nothing, and the ``openai`` SDK is imported only when a model is
first called.

Modules: :mod:`~dotevals.llm.retries` (which errors are retried, how long to wait),
:mod:`~dotevals.llm.limits` (requests and tokens per minute, concurrency per model),
:mod:`~dotevals.llm.cache` (the SQLite response cache), :mod:`~dotevals.llm.context`
(the row being scored: its epoch, and what its calls report),
:mod:`~dotevals.llm.openai` (the provider).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dotevals.llm.cache import ResponseCache, default_cache_path
    from dotevals.llm.context import CallTally, RowCalls, current_epoch, current_row
    from dotevals.llm.limits import Limits, ModelLimiter, limiter_for
    from dotevals.llm.openai import GenerateSettings, OpenAIModel, OpenAIProvider
    from dotevals.llm.retries import is_retryable, retry_after

__all__ = [
    "CallTally",
    "GenerateSettings",
    "Limits",
    "ModelLimiter",
    "OpenAIModel",
    "OpenAIProvider",
    "ResponseCache",
    "RowCalls",
    "current_epoch",
    "current_row",
    "default_cache_path",
    "is_retryable",
    "limiter_for",
    "retry_after",
]

#: Where each name lives, imported on first use.
_HOMES = {
    "ResponseCache": "dotevals.llm.cache",
    "default_cache_path": "dotevals.llm.cache",
    "CallTally": "dotevals.llm.context",
    "RowCalls": "dotevals.llm.context",
    "current_epoch": "dotevals.llm.context",
    "current_row": "dotevals.llm.context",
    "Limits": "dotevals.llm.limits",
    "ModelLimiter": "dotevals.llm.limits",
    "limiter_for": "dotevals.llm.limits",
    "GenerateSettings": "dotevals.llm.openai",
    "OpenAIModel": "dotevals.llm.openai",
    "OpenAIProvider": "dotevals.llm.openai",
    "is_retryable": "dotevals.llm.retries",
    "retry_after": "dotevals.llm.retries",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'dotevals.llm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
