"""The row being scored, as model code sees it: which row and epoch, its seed, and
the usage, settings and model calls it reports.

The engine enters a :class:`Row` around each (row, epoch) it scores, in the main
process or in a worker, for sync and async rows alike; :func:`current_row` gives it
to code the row calls (the model provider, whose cache keys include the epoch),
and None outside a row. It is a context variable: concurrent async rows each see
their own, and an async row's tasks inherit it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dotevals.errors import RowExitError
    from dotevals.llm.cost import Prices
    from dotevals.llm.usage import Usage
    from dotevals.models import Record

__all__ = [
    "Row",
    "RowCalls",
    "current_epoch",
    "current_row",
    "enter",
    "leave",
    "record_settings",
    "row_seed",
]


def row_seed(seed: int, item_id: int, epoch: int) -> int:
    """The seed of one (row, epoch) of a run seeded with ``seed``: a number below 2**32
    that depends on nothing else (not the worker, not the order rows ran in)."""
    digest = hashlib.blake2b(f"{seed}/{item_id}/{epoch}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big")


@dataclass
class RowCalls:
    """The model calls of one row."""

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

    def add_rate_limited(self, count: int) -> None:
        """Report 429s met by a call that then failed (it has no answer to report)."""
        self.rate_limited += count

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


class Row:
    """One (row, epoch) being scored.

    ``usage`` holds the tokens reported so far, by model, ``settings`` the
    settings model code recorded (temperature, max tokens...), by model, and
    ``calls`` what the calls of dotevals' provider reported (cache hits, 429s).
    ``is_async`` says whether the row is a coroutine's (the provider answers it
    with an awaitable).
    """

    __slots__ = (
        "item_id",
        "epoch",
        "run_seed",
        "is_async",
        "pid",
        "exited",
        "reported",
        "_usage",
        "_settings",
        "_calls",
    )

    def __init__(self, item_id: int, epoch: int, run_seed: int, is_async: bool = False):
        self.item_id = item_id
        self.epoch = epoch
        self.run_seed = run_seed
        self.is_async = is_async
        #: The process scoring the row (a process the row forks has another pid).
        self.pid = _pid
        #: What the row's ``os._exit`` raised, once it called it (see dotevals._engine.exits).
        self.exited: RowExitError | None = None
        #: Model code reported usage, settings or calls in this row.
        self.reported = False
        # made at the first report: most rows report nothing
        self._usage: dict[str, Usage] | None = None
        self._settings: dict[str, dict[str, Any]] | None = None
        self._calls: RowCalls | None = None

    @property
    def usage(self) -> dict[str, Usage]:
        """The tokens reported so far, by model."""
        return self._usage or {}

    @property
    def settings(self) -> dict[str, dict[str, Any]]:
        """The settings recorded so far, by model."""
        return self._settings or {}

    @property
    def calls(self) -> RowCalls | None:
        """What the provider's calls reported in this row, None when it made none."""
        return self._calls

    @property
    def seed(self) -> int:
        """This (row, epoch)'s own seed, made from the run's ``--seed``: give it to a
        model call or to ``random.Random`` so that a rerun draws the same, and each
        epoch draws anew."""
        return row_seed(self.run_seed, self.item_id, self.epoch)

    def add_usage(self, model: str, usage: Usage) -> None:
        self.reported = True
        found = self._usage
        if found is None:
            self._usage = {model: usage}
            return
        known = found.get(model)
        found[model] = usage if known is None else known + usage

    def add_settings(self, model: str, settings: dict[str, Any]) -> None:
        self.reported = True
        if self._settings is None:
            self._settings = {}
        self._settings.setdefault(model, {}).update(settings)

    def report_calls(self) -> RowCalls:
        """Where the provider reports its calls in this row (made at the first report)."""
        self.reported = True
        if self._calls is None:
            self._calls = RowCalls()
        return self._calls

    def settle(self, record: Record, prices: Prices | None) -> Record:
        """``record`` with what this row reported: its usage added to the result's, the
        cost of it all at ``prices``, the settings recorded, the provider's calls (cache
        hits, 429s)."""
        result, reported = record.result, self._usage
        if reported:
            own = result.usage
            if own:
                merged = dict(own)
                for model, used in reported.items():
                    known = merged.get(model)
                    merged[model] = used if known is None else known + used
                result.usage = merged
            else:
                result.usage = reported
        usage = result.usage
        if self._settings:
            record.settings = self._settings
        if self._calls is not None:
            record.model_calls = self._calls.to_dict()
        if usage and prices is not None:
            cost = {}
            for model, used in usage.items():
                usd = prices.cost(model, used)
                if usd is not None:
                    cost[model] = usd
            record.cost = cost
        return record

    def __repr__(self) -> str:
        return f"Row(item_id={self.item_id}, epoch={self.epoch}, seed={self.seed})"


#: This process's pid, kept up to date in forked children (os.getpid is a system call).
_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)

_CURRENT: ContextVar[Row | None] = ContextVar("dotevals_row", default=None)


def current_row() -> Row | None:
    """The (row, epoch) being scored here, or None outside a row."""
    return _CURRENT.get()


def current_epoch() -> int:
    """The epoch of the row being scored; 0 outside a row."""
    row = _CURRENT.get()
    return 0 if row is None else row.epoch


#: Make a Row the current one; give the token it returns to :func:`leave` once the row
#: is scored (the ContextVar's own methods: rows pay for no call in between).
enter: Callable[[Row], Token[Row | None]] = _CURRENT.set
leave: Callable[[Token[Row | None]], None] = _CURRENT.reset


def record_settings(model: str, **settings: Any) -> bool:
    """Record the settings a model is called with in this row (``temperature=0.7``...):
    they are stored with the evaluation. False, and nothing kept, outside a row."""
    row = _CURRENT.get()
    if row is None:
        return False
    row.add_settings(str(model), settings)
    return True
