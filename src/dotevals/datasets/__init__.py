"""Registered datasets: named sources of rows for ``@foreach.<name>(split)``."""

from dotevals.datasets.base import Dataset
from dotevals.datasets.registry import (
    DatasetRegistry,
    get_dataset,
    get_dataset_info,
    list_available,
    list_datasets,
    register_dataset,
)

__all__ = [
    "Dataset",
    "DatasetRegistry",
    "get_dataset",
    "get_dataset_info",
    "list_available",
    "list_datasets",
    "register_dataset",
]
