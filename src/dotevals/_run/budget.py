"""A run's budget: ``--max-cost USD`` and ``--max-tokens N``.

The budget covers the experiment: what every evaluation of it has stored
(each sample's newest record), the rows this run stores included. Once that
reaches a limit, no new row starts: rows already running finish and are
stored (so the total may pass the limit by what they used), each evaluation
with rows left ends as ``interrupted``, and the run says so once. A later run
with a larger budget resumes where it stopped.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dotevals.errors import ConfigurationError

if TYPE_CHECKING:
    from dotevals.models import ScoreTally
    from dotevals.storage.base import EvaluationInfo

__all__ = ["Budget", "parse_max_cost", "parse_max_tokens"]


def parse_max_cost(value: float | str | None) -> float | None:
    """USD: a number > 0, or None for no limit."""
    if value is None:
        return None
    try:
        usd = float(value)
    except (TypeError, ValueError):
        usd = math.nan
    if isinstance(value, bool) or not (usd > 0 and math.isfinite(usd)):
        raise ConfigurationError(f"max_cost must be a number of US dollars > 0, got {value!r:.40}")
    return usd


def parse_max_tokens(value: int | str | None) -> int | None:
    """Tokens: a whole number > 0, or None for no limit."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"max_tokens must be a whole number > 0, got {value!r:.40}")
    return value


@dataclass
class Budget:
    """The limits of one run and what the experiment has spent against them."""

    max_cost: float | None = None
    max_tokens: int | None = None
    #: What each evaluation of the experiment had stored when the run started, by name:
    #: (tokens, USD), from its bookkeeping.
    before: dict[str, tuple[int, float]] = field(default_factory=dict)
    #: The tallies of the evaluations this run started: their totals replace ``before``.
    running: dict[str, ScoreTally] = field(default_factory=dict)
    #: Said once the budget is reached.
    announced: bool = False

    @property
    def limited(self) -> bool:
        return self.max_cost is not None or self.max_tokens is not None

    def remember(self, infos: list[EvaluationInfo]) -> None:
        """What the experiment's evaluations stored, as their bookkeeping says."""
        for info in infos:
            self.before[info.name] = spent(info.metadata)

    def follow(self, name: str, tally: ScoreTally) -> None:
        """Count evaluation ``name`` by its tally from now on (rows added included)."""
        self.running[name] = tally

    def spent(self) -> tuple[int, float]:
        """The tokens and USD the experiment's stored samples used."""
        tokens, usd = 0, 0.0
        for name, (t, c) in self.before.items():
            if name not in self.running:
                tokens, usd = tokens + t, usd + c
        for tally in self.running.values():
            tokens, usd = tokens + tally.tokens, usd + tally.total_cost
        return tokens, usd

    def reached(self) -> str | None:
        """What is spent, when it reached a limit (None: rows may start)."""
        if not self.limited:
            return None
        tokens, usd = self.spent()
        if self.max_cost is not None and usd >= self.max_cost:
            return f"--max-cost {self.max_cost:g} USD reached ({usd:.4f} USD stored)"
        if self.max_tokens is not None and tokens >= self.max_tokens:
            return f"--max-tokens {self.max_tokens} reached ({tokens} tokens stored)"
        return None

    def stop_line(self, reason: str, experiment: str, announce: Callable[[str], Any]) -> None:
        """Say once that the budget stopped the run, and how to go on."""
        if self.announced:
            return
        self.announced = True
        option = "--max-cost" if reason.startswith("--max-cost") else "--max-tokens"
        announce(
            f"dotevals: the budget is spent, no new row starts: {reason} in experiment "
            f"{experiment!r}; run again with a larger {option} to resume"
        )


def spent(metadata: dict[str, Any]) -> tuple[int, float]:
    """(tokens, USD) an evaluation's bookkeeping says its stored samples used."""
    usage = metadata.get("usage")
    cost = metadata.get("cost")
    tokens = 0
    if isinstance(usage, dict):
        for counts in usage.values():
            if isinstance(counts, dict):
                tokens += sum(
                    v
                    for k, v in counts.items()
                    if k in ("input_tokens", "output_tokens") and type(v) is int
                )
    usd = 0.0
    if isinstance(cost, dict):
        usd = sum(v for v in cost.values() if isinstance(v, (int, float)) and math.isfinite(v))
    return tokens, usd
