"""What the calls of dotevals' model provider report: per row, and added up.

The provider reports each call to the row being scored
(:func:`dotevals.llm.row.current_row`, which the engine sets around every row, in
the main process and in worker processes, for sync and async rows alike): whether
its answer came from the cache, its usage block, the 429s it met and the model's
concurrency limit. After the row, the engine stores that report with the row's
record, under ``model_calls`` (:meth:`dotevals.llm.row.RowCalls.to_dict`)::

    {"cache_hits": 1, "cache_misses": 0, "rate_limited": 0,
     "calls": [{"model": "gpt-4o-mini", "cached": true, "limit": 32,
                "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}}]}

``usage`` is the response's usage block as the server sent it (the cached response's
own for a hit): the tokens a hit saved are read from it (:class:`CallTally`). The
tokens a call spent are also reported as the row's :class:`~dotevals.llm.usage.Usage`,
which its cost is computed from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dotevals.llm.usage import Usage

__all__ = ["CallTally"]


@dataclass
class CallTally:
    """The model calls of many rows, added up from their records' ``model_calls``
    (the progress bar, the pytest summary)."""

    cache_hits: int = 0
    cache_misses: int = 0
    rate_limited: int = 0
    #: The newest concurrency limit a call reported (the limiter's live limit).
    limit: int | None = None
    #: The tokens the cache hits saved, by model (read from their usage blocks).
    saved: dict[str, Usage] = field(default_factory=dict)

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
            if call.get("cached") and isinstance(call.get("usage"), dict):
                self._save(str(call.get("model")), call)

    def _save(self, model: str, call: dict[str, Any]) -> None:
        from dotevals.llm.usage import read_usage

        try:
            usage = read_usage(call)  # the call's usage block, by its shape
        except ValueError:  # a server's block of another shape: nothing to count
            return
        self.saved[model] = self.saved[model] + usage if model in self.saved else usage

    def merge(self, other: CallTally) -> None:
        """Add ``other``'s counts (its limit, when it has one, is the newer)."""
        self.cache_hits += other.cache_hits
        self.cache_misses += other.cache_misses
        self.rate_limited += other.rate_limited
        if other.limit is not None:
            self.limit = other.limit
        for model, usage in other.saved.items():
            self.saved[model] = self.saved[model] + usage if model in self.saved else usage

    @property
    def calls(self) -> int:
        return self.cache_hits + self.cache_misses

    def __bool__(self) -> bool:
        return bool(self.calls or self.rate_limited or self.limit is not None)
