"""Token usage of model calls: the :class:`Usage` type and how a row reports it.

A row's usage is kept per model. It comes from ``Result(usage={model: Usage(...)})``
or, inside the row, from :func:`track` (a response object of the OpenAI or
Anthropic SDK, or its JSON as a dict) and :func:`add_usage` (what a provider
measured itself). :func:`read_usage` reads a response's usage block by its
shape, without importing either SDK.

Counts follow OpenAI's convention: ``input_tokens`` counts every input token,
the cached ones included (``cached_input_tokens`` says how many of them were
read from the provider's cache), and ``output_tokens`` every output token, the
reasoning ones included (``reasoning_tokens``). Anthropic's counts, which keep
cache reads and cache writes apart from ``input_tokens``, are added up into it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from dotevals.llm.row import _CURRENT

__all__ = ["Usage", "add_usage", "read_usage", "track", "usage_by_model"]

R = TypeVar("R")


#: Token counts stay below this (a signed 64-bit integer, as the tally keeps them).
MAX_TOKENS = 2**63


@dataclass(frozen=True, slots=True)
class Usage:
    """The tokens of one or more model calls: whole numbers >= 0 (see the module
    docstring for what each one counts). Usages add up with ``+``."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0

    def __post_init__(self) -> None:
        for name in _FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < MAX_TOKENS:
                raise TypeError(
                    f"Usage's {name} must be a whole number from 0 to 2**63 - 1, got {value!r:.40}"
                )

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(*(getattr(self, n) + getattr(other, n) for n in _FIELDS))

    def counts(self) -> dict[str, int]:
        """Every count by name, zeros included."""
        return {name: getattr(self, name) for name in _FIELDS}

    @property
    def total_tokens(self) -> int:
        """Input and output tokens (cached and reasoning ones are among them)."""
        return self.input_tokens + self.output_tokens

    def to_dict(self) -> dict[str, int]:
        """Input and output tokens, and the cached and reasoning ones when there are some
        (a count left out is 0)."""
        data = {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}
        if self.cached_input_tokens:
            data["cached_input_tokens"] = self.cached_input_tokens
        if self.reasoning_tokens:
            data["reasoning_tokens"] = self.reasoning_tokens
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Usage:
        """The usage stored as ``data``; a count it lacks is 0."""
        return cls(**{name: data.get(name, 0) for name in _FIELDS})


_FIELDS = tuple(f.name for f in fields(Usage))


def usage_by_model(usage: object) -> dict[str, Usage]:
    """``Result(usage=...)`` as ``{model: Usage}``: a mapping of model names to
    :class:`Usage` objects (or their dicts); TypeError saying what to write otherwise."""
    if usage is None:
        return {}
    if isinstance(usage, Usage):
        raise TypeError(
            "Result's usage is kept per model: write usage={'MODEL': Usage(...)}, not a Usage alone"
        )
    if not isinstance(usage, Mapping):
        raise TypeError(
            f"Result's usage must map model names to Usage, such as "
            f"{{'gpt-4o': Usage(input_tokens=12, output_tokens=3)}}, got {type(usage).__name__}"
        )
    found = {}
    for model, value in usage.items():
        if not isinstance(model, str):
            raise TypeError(f"Result's usage is keyed by model name (text), got {model!r:.40}")
        found[model] = value if isinstance(value, Usage) else Usage.from_dict(value)
    return found


def _get(obj: Any, name: str) -> Any:
    """``obj[name]`` of a dict, ``obj.name`` of anything else; None when absent."""
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _count(block: Any, *path: str) -> int:
    """The token count at ``path`` inside ``block``: 0 when absent or null."""
    value = block
    for name in path:
        value = _get(value, name)
        if value is None:
            return 0
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"the usage block's {'.'.join(path)} is {value!r:.40}, not a token count")
    return value


def read_usage(response: Any) -> Usage:
    """The usage of a model response, read by its shape: an OpenAI chat completion
    (``usage.prompt_tokens``...), an OpenAI Responses API response
    (``usage.input_tokens``, ``input_tokens_details``...) or an Anthropic message
    (``usage.input_tokens``, ``cache_read_input_tokens``...), as the SDK's object or
    as its JSON (a dict). ValueError when it has no usage block."""
    block = _get(response, "usage")
    if block is None:
        raise ValueError(
            f"{type(response).__name__} has no usage block: pass the response of an OpenAI "
            "or Anthropic call, or give the counts with add_usage(model, Usage(...))"
        )
    if _get(block, "prompt_tokens") is not None:  # OpenAI chat completions
        return Usage(
            input_tokens=_count(block, "prompt_tokens"),
            output_tokens=_count(block, "completion_tokens"),
            cached_input_tokens=_count(block, "prompt_tokens_details", "cached_tokens"),
            reasoning_tokens=_count(block, "completion_tokens_details", "reasoning_tokens"),
        )
    anthropic = any(
        _has(block, name) for name in ("cache_read_input_tokens", "cache_creation_input_tokens")
    )
    if anthropic:  # input_tokens leaves out what the cache read and wrote
        cached = _count(block, "cache_read_input_tokens")
        written = _count(block, "cache_creation_input_tokens")
        return Usage(
            input_tokens=_count(block, "input_tokens") + cached + written,
            output_tokens=_count(block, "output_tokens"),
            cached_input_tokens=cached,
        )
    return Usage(  # OpenAI Responses API
        input_tokens=_count(block, "input_tokens"),
        output_tokens=_count(block, "output_tokens"),
        cached_input_tokens=_count(block, "input_tokens_details", "cached_tokens"),
        reasoning_tokens=_count(block, "output_tokens_details", "reasoning_tokens"),
    )


def _has(block: Any, name: str) -> bool:
    return name in block if isinstance(block, Mapping) else hasattr(block, name)


def add_usage(model: str, usage: Usage) -> bool:
    """Add ``usage`` of ``model`` to the row being scored (what a model provider calls
    after each request). False, and nothing kept, outside a row."""
    if not isinstance(usage, Usage):
        raise TypeError(f"add_usage takes a Usage, got {type(usage).__name__}")
    row = _CURRENT.get()  # current_row(), without the call: providers add usage per call
    if row is None:
        return False
    row.add_usage(model if type(model) is str else str(model), usage)
    return True


def track(response: R, model: str | None = None) -> R:
    """Add the usage of an OpenAI or Anthropic ``response`` to the row being scored,
    under ``model`` (default: the model the response names), and return the response::

        answer = track(client.chat.completions.create(...)).choices[0].message.content
    """
    name = model if model is not None else _get(response, "model")
    add_usage(str(name) if name is not None else "", read_usage(response))
    return response
