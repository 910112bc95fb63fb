"""Model calls: the tokens they use and what they cost.

::

    from dotevals.llm import Usage, track, set_price

    set_price("my-model", input=0.5, output=1.5)  # USD per million tokens

    @foreach("question,answer", rows)
    def eval_qa(question, answer, client):
        response = track(client.chat.completions.create(model="gpt-4o-mini", messages=...))
        return exact_match(response.choices[0].message.content, answer)

A row's usage is kept per model (:class:`Usage`: input, output, cached-input and
reasoning tokens), from :func:`track` or :func:`add_usage` inside the row, or from
``Result(usage={model: Usage(...)})``. Its cost comes from the price you set
(:func:`set_price`) or, with the extra ``dotevals[prices]``, from the
``genai-prices`` table. :func:`current_row` tells model code which row and epoch
it is called for, with a seed of its own.

Every name is imported on first use: worker processes and the pytest plugin
import only what they touch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dotevals.llm.cost import Price, cost_of, price_of, set_price
    from dotevals.llm.row import Row, current_row, record_settings
    from dotevals.llm.usage import Usage, add_usage, read_usage, track

__all__ = [
    "Price",
    "Row",
    "Usage",
    "add_usage",
    "cost_of",
    "current_row",
    "price_of",
    "read_usage",
    "record_settings",
    "set_price",
    "track",
]

_HOMES = {
    **dict.fromkeys(("Price", "cost_of", "price_of", "set_price"), "dotevals.llm.cost"),
    **dict.fromkeys(("Row", "current_row", "record_settings"), "dotevals.llm.row"),
    **dict.fromkeys(("Usage", "add_usage", "read_usage", "track"), "dotevals.llm.usage"),
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'dotevals.llm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
