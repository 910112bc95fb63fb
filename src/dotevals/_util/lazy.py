"""Functions named by module and name, imported when first called.

The pytest plugin and the storage registry name what they may call (the option
parsers, the built-in storage backends) without importing it: pytest loads the
plugin in every session, and a run opens one storage backend only.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["lazy"]


def lazy(module: str, name: str) -> Callable[..., Any]:
    """``module.name``, imported when it is first called."""

    def call(*args: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args)

    call.__name__ = call.__qualname__ = name
    return call
