"""Registered datasets: named sources of rows for ``@foreach.<name>(split)``."""

from dotevals.datasets.base import Dataset
from dotevals.datasets.registry import get_dataset, list_datasets, register_dataset

__all__ = ["Dataset", "get_dataset", "list_datasets", "register_dataset"]
