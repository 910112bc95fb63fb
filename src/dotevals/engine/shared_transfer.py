"""Pickling lists of rows or records between the main process and workers (both sides).

A list is pickled in one go; only when that fails is each item tried alone,
and an item that cannot travel is replaced by its own error, so one bad row
or result never costs the others.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import cloudpickle

__all__ = ["pack_each"]

T = TypeVar("T")


def pack_each(items: list[T], replace: Callable[[T, Exception], T]) -> bytes:
    """Pickle ``items``; an item that cannot be pickled is sent as ``replace(item, error)``."""
    try:
        return cloudpickle.dumps(items)
    except Exception:
        return cloudpickle.dumps([_sendable(item, replace) for item in items])


def _sendable(item: T, replace: Callable[[T, Exception], T]) -> T:
    try:
        cloudpickle.dumps(item)
    except Exception as exc:
        return replace(item, exc)
    return item
