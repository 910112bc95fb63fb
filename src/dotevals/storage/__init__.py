"""Where results live: the Storage interface and backends chosen by URL scheme."""

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
