"""The row being scored, as model calls see it, and what its calls report back.

The engine (:mod:`dotevals._engine.scoring`) sets :data:`CURRENT_ROW` around the
call of each row, in the main process and in worker processes, for sync and async
rows alike (an async row's tasks inherit it). A model call reads it for the row's
**epoch**, which is part of the cache key (repeats of a row each get their own
cached answer), and reports to it what the call did: whether its answer came
from the cache, its usage block, the 429s it met and the model's concurrency limit.

After the row, the engine stores that report with the row's record, under
``model_calls`` (:meth:`RowCalls.to_dict`)::

    {"cache_hits": 1, "cache_misses": 0, "rate_limited": 0,
     "calls": [{"model": "gpt-4o-mini", "cached": true, "limit": 32,
                "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}}]}

``usage`` is the response's usage block as the server sent it (the cached response's
own for a hit): the hook through which token counts and costs are read per row.
Outside a row (a fixture, a script) there is no current row, and the epoch is 0.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CURRENT_ROW", "CallTally", "RowCalls", "current_epoch", "current_row"]


@dataclass
class RowCalls:
    """The row being scored (its id, epoch and whether it is async) and its model calls."""

    item_id: int | None = None
    epoch: int = 0
    is_async: bool = False
    #: One dict per call: model, cached, usage, limit (see the module docstring).
    calls: list[dict[str, Any]] = field(default_factory=list)
    cache_hits: int = 0
    cache_misses: int = 0
    #: 429 answers met by this row's calls (each one retried or not).
    rate_limited: int = 0

    def add(
        self,
        model: str,
        *,
        cached: bool | None,
        usage: dict[str, Any] | None = None,
        rate_limited: int = 0,
        limit: int | None = None,
    ) -> None:
        """Report one call: ``cached`` True (a hit), False (a miss), None (cache off)."""
        call: dict[str, Any] = {"model": model, "cached": bool(cached)}
        if usage is not None:
            call["usage"] = usage
        if limit is not None:
            call["limit"] = limit
        if rate_limited:
            call["rate_limited"] = rate_limited
        self.calls.append(call)
        if cached is True:
            self.cache_hits += 1
        elif cached is False:
            self.cache_misses += 1
        self.rate_limited += rate_limited

    def to_dict(self) -> dict[str, Any] | None:
        """What the row's record stores under ``model_calls``; None without any call."""
        if not self.calls and not self.rate_limited:
            return None
        return {
            "cache_hits": self.cache_hits,
            "cache_misses": self.cache_misses,
            "rate_limited": self.rate_limited,
            "calls": list(self.calls),
        }


#: The row being scored in this context; None outside a row.
CURRENT_ROW: ContextVar[RowCalls | None] = ContextVar("dotevals_current_row", default=None)


def current_row() -> RowCalls | None:
    """The row being scored, or None outside a row."""
    return CURRENT_ROW.get()


def current_epoch() -> int:
    """The epoch of the row being scored; 0 outside a row."""
    row = CURRENT_ROW.get()
    return 0 if row is None else row.epoch


@dataclass
class CallTally:
    """The model calls of many rows, added up from their records' ``model_calls``
    (the progress bar, the pytest summary)."""

    cache_hits: int = 0
    cache_misses: int = 0
    rate_limited: int = 0
    #: The newest concurrency limit a call reported (the limiter's live limit).
    limit: int | None = None
    #: Each numeric field of the usage blocks of the cache hits, added up: the tokens
    #: the cache saved, by the names the server gave them. (Usage and cost modules read
    #: the calls' ``usage`` blocks by shape; this is where they plug into the summary.)
    saved_usage: dict[str, float] = field(default_factory=dict)

    def add(self, model_calls: dict[str, Any] | None) -> None:
        if not model_calls:
            return
        self.cache_hits += int(model_calls.get("cache_hits", 0) or 0)
        self.cache_misses += int(model_calls.get("cache_misses", 0) or 0)
        self.rate_limited += int(model_calls.get("rate_limited", 0) or 0)
        for call in model_calls.get("calls", ()):
            if not isinstance(call, dict):
                continue
            if isinstance(call.get("limit"), int):
                self.limit = call["limit"]
            usage = call.get("usage")
            if call.get("cached") and isinstance(usage, dict):
                for name, value in usage.items():
                    if isinstance(value, (int, float)) and not isinstance(value, bool):
                        self.saved_usage[name] = self.saved_usage.get(name, 0) + value

    def merge(self, other: CallTally) -> None:
        """Add ``other``'s counts (its limit, when it has one, is the newer)."""
        self.cache_hits += other.cache_hits
        self.cache_misses += other.cache_misses
        self.rate_limited += other.rate_limited
        if other.limit is not None:
            self.limit = other.limit
        for name, value in other.saved_usage.items():
            self.saved_usage[name] = self.saved_usage.get(name, 0) + value

    @property
    def calls(self) -> int:
        return self.cache_hits + self.cache_misses

    def __bool__(self) -> bool:
        return bool(self.calls or self.rate_limited or self.limit is not None)
