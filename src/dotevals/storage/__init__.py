"""Where results live: the Storage interface and backends chosen by URL scheme.

Names are imported on first use, so that a worker process that only encodes
records (:mod:`dotevals.storage.encoding`) does not load the backends.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dotevals.storage.base import EvaluationInfo, ExperimentInfo, Storage
    from dotevals.storage.registry import (
        DEFAULT_STORAGE,
        get_storage,
        list_backends,
        register,
        register_storage,
    )

__all__ = [
    "DEFAULT_STORAGE",
    "EvaluationInfo",
    "ExperimentInfo",
    "Storage",
    "get_storage",
    "list_backends",
    "register",
    "register_storage",
]

_HOMES = {
    **dict.fromkeys(("EvaluationInfo", "ExperimentInfo", "Storage"), "dotevals.storage.base"),
    **dict.fromkeys(
        ("DEFAULT_STORAGE", "get_storage", "list_backends", "register", "register_storage"),
        "dotevals.storage.registry",
    ),
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'dotevals.storage' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
