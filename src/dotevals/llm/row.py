"""The row being scored, as model code sees it: which row and epoch, its seed, and
the usage and settings its model calls report.

The engine enters a :class:`Row` around each (row, epoch) it scores, in the main
process or in a worker; :func:`current_row` gives it to code the row calls (a
model provider, a cache keyed by epoch), and None outside a row. It is a
context variable: concurrent async rows each see their own.
"""

from __future__ import annotations

import hashlib
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dotevals.llm.usage import Usage

__all__ = ["Row", "current_row", "enter", "leave", "record_settings", "row_seed"]


def row_seed(seed: int, item_id: int, epoch: int) -> int:
    """The seed of one (row, epoch) of a run seeded with ``seed``: a number below 2**32
    that depends on nothing else (not the worker, not the order rows ran in)."""
    digest = hashlib.blake2b(f"{seed}/{item_id}/{epoch}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big")


class Row:
    """One (row, epoch) being scored.

    ``usage`` holds the tokens reported so far, by model, and ``settings`` the
    settings model code recorded (temperature, max tokens...), by model.
    """

    __slots__ = ("item_id", "epoch", "run_seed", "_usage", "_settings")

    def __init__(self, item_id: int, epoch: int, run_seed: int):
        self.item_id = item_id
        self.epoch = epoch
        self.run_seed = run_seed
        # made at the first report: most rows report nothing
        self._usage: dict[str, Usage] | None = None
        self._settings: dict[str, dict[str, Any]] | None = None

    @property
    def usage(self) -> dict[str, Usage]:
        """The tokens reported so far, by model."""
        return self._usage or {}

    @property
    def settings(self) -> dict[str, dict[str, Any]]:
        """The settings recorded so far, by model."""
        return self._settings or {}

    @property
    def reported(self) -> bool:
        """Model code reported usage or settings in this row."""
        return self._usage is not None or self._settings is not None

    @property
    def seed(self) -> int:
        """This (row, epoch)'s own seed, made from the run's ``--seed``: give it to a
        model call or to ``random.Random`` so that a rerun draws the same, and each
        epoch draws anew."""
        return row_seed(self.run_seed, self.item_id, self.epoch)

    def add_usage(self, model: str, usage: Usage) -> None:
        if self._usage is None:
            self._usage = {}
        known = self._usage.get(model)
        self._usage[model] = usage if known is None else known + usage

    def add_settings(self, model: str, settings: dict[str, Any]) -> None:
        if self._settings is None:
            self._settings = {}
        self._settings.setdefault(model, {}).update(settings)

    def __repr__(self) -> str:
        return f"Row(item_id={self.item_id}, epoch={self.epoch}, seed={self.seed})"


_CURRENT: ContextVar[Row | None] = ContextVar("dotevals_row", default=None)


def current_row() -> Row | None:
    """The (row, epoch) being scored here, or None outside a row."""
    return _CURRENT.get()


def enter(row: Row) -> Token[Row | None]:
    """Make ``row`` the current one; give the token to :func:`leave` once it is scored."""
    return _CURRENT.set(row)


def leave(token: Token[Row | None]) -> None:
    _CURRENT.reset(token)


def record_settings(model: str, **settings: Any) -> bool:
    """Record the settings a model is called with in this row (``temperature=0.7``...):
    they are stored with the evaluation. False, and nothing kept, outside a row."""
    row = _CURRENT.get()
    if row is None:
        return False
    row.add_settings(str(model), settings)
    return True
