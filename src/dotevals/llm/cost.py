"""What model calls cost, in US dollars.

A model's price is the one set with :func:`set_price` (USD per million tokens),
else the one of the ``genai-prices`` table (the optional extra
``dotevals[prices]``: ``pip install "dotevals[prices]"``), which knows the
public prices of the major providers and follows their changes from release to
release. A model with neither has no cost (None): its tokens are still counted.

A run computes each row's cost when the row is scored, with the prices set
when the run started (worker processes get them from the main process), and
stores it with the row: a later change of price leaves stored costs as they were.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from dotevals.errors import ConfigurationError
from dotevals.llm.usage import Usage

__all__ = ["Price", "Prices", "cost_of", "price_of", "set_price", "user_prices"]

#: Tokens a price is given for.
PER = 1_000_000


@dataclass(frozen=True)
class Price:
    """A model's price in USD per million tokens: ``input``, ``output`` and, for input
    tokens read from the provider's cache, ``cached_input`` (None: the input price).
    Reasoning tokens are output tokens, at the output price."""

    input: float
    output: float
    cached_input: float | None = None

    def __post_init__(self) -> None:
        for name in ("input", "output", "cached_input"):
            value = getattr(self, name)
            if value is None and name == "cached_input":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigurationError(f"price {name} must be a number, got {value!r:.40}")
            if not (math.isfinite(value) and value >= 0):
                raise ConfigurationError(f"price {name} must be a finite number >= 0, got {value}")

    def cost(self, usage: Usage) -> float:
        """The cost of ``usage`` at this price, in USD."""
        cached = min(usage.cached_input_tokens, usage.input_tokens)
        cached_price = self.input if self.cached_input is None else self.cached_input
        return (
            (usage.input_tokens - cached) * self.input
            + cached * cached_price
            + usage.output_tokens * self.output
        ) / PER


#: The prices set in this process, by model.
_SET: dict[str, Price] = {}


def set_price(
    model: str, *, input: float, output: float, cached_input: float | None = None
) -> None:
    """Price ``model``'s tokens (USD per million) for the runs of this process, over
    the ``genai-prices`` table: in a conftest.py, or before ``dotevals.run``."""
    if not isinstance(model, str) or not model:
        raise ConfigurationError(f"set_price needs a model name, got {model!r:.40}")
    _SET[model] = Price(input, output, cached_input)


def user_prices() -> dict[str, Price]:
    """The prices set with :func:`set_price`, by model (a copy, for a run's workers)."""
    return dict(_SET)


class Prices:
    """The prices of one run: those set (``given``) and, for other models, the
    ``genai-prices`` table's, looked up once per model. A flat price from the table
    is computed here, as a set one is; a price tiered by the input's length is left
    to the table's own calculation for each usage."""

    def __init__(self, given: Mapping[str, Price] | None = None):
        self.given = dict(given or {})
        #: The table's answer for each model asked so far: its flat Price, TIERED or
        #: None (the table has no price for it, or is not installed).
        self._found: dict[str, Price | str | None] = {}

    def cost(self, model: str, usage: Usage) -> float | None:
        """The cost of ``usage`` of ``model`` in USD; None when the model has no price."""
        price = self.given.get(model)
        if price is None:
            found = self._table(model)
            if found == TIERED:
                return _table_cost(model, usage)
            price = found  # type: ignore[assignment]
        return None if price is None else price.cost(usage)

    def price(self, model: str) -> Price | None:
        """``model``'s price: the one set, else the table's flat one, else None."""
        price = self.given.get(model)
        if price is not None:
            return price
        found = self._table(model)
        return None if found == TIERED else found  # type: ignore[return-value]

    def _table(self, model: str) -> Price | str | None:
        if model not in self._found:
            self._found[model] = _table_price(model)
        return self._found[model]


#: The table's price of a model is tiered by the length of the input.
TIERED = "tiered"


def _snapshot() -> Any:
    """genai-prices' price table, or None when the extra is not installed."""
    try:
        import genai_prices  # the extra dotevals[prices]; heavy: imported on first use
    except ImportError:
        return None
    return genai_prices


def _table_cost(model: str, usage: Usage) -> float | None:
    table = _snapshot()
    if table is None or not model:
        return None
    counts = table.Usage(
        input_tokens=usage.input_tokens,
        cache_read_tokens=min(usage.cached_input_tokens, usage.input_tokens),
        output_tokens=usage.output_tokens,
    )
    try:
        return float(table.calc_price(counts, model).total_price)
    except LookupError:  # a model the table does not know
        return None


def _table_price(model: str) -> Price | str | None:
    """``model``'s price in the table: a flat Price, TIERED, or None (none there)."""
    table = _snapshot()
    if table is None or not model:
        return None
    try:
        found = table.calc_price(table.Usage(input_tokens=0, output_tokens=0), model)
    except LookupError:
        return None
    prices = found.model_price
    flat = [getattr(prices, n, None) for n in ("input_mtok", "output_mtok", "cache_read_mtok")]
    if not all(p is None or isinstance(p, (int, float, Decimal)) for p in flat[2:]) or not all(
        isinstance(p, (int, float, Decimal)) for p in flat[:2]
    ):
        return TIERED  # by the length of the input: only a count has one price
    given, made, cached = flat
    return Price(float(given), float(made), None if cached is None else float(cached))  # type: ignore[arg-type]


def price_of(model: str) -> Price | None:
    """``model``'s price per million tokens: the one set with :func:`set_price`, else
    the ``genai-prices`` table's (when it has one flat price), else None."""
    return Prices(_SET).price(model)


def cost_of(model: str, usage: Usage) -> float | None:
    """The cost of ``usage`` of ``model`` in USD at the prices a run would use now;
    None when the model has no price."""
    return Prices(_SET).cost(model, usage)
