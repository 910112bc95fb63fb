"""Reading stored experiments: open a storage to read it, find an experiment and
its evaluations, with a one-line error naming what is missing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dotevals.errors import ConfigurationError, ExperimentNotFoundError, StorageError
from dotevals.report import storage_option
from dotevals.storage import ExperimentInfo, Storage, get_storage
from dotevals.storage.base import check_experiment_name

__all__ = ["evaluation_names", "find_experiment", "open_storage"]


@contextmanager
def open_storage(storage: str | Storage) -> Iterator[Storage]:
    """The storage a URL names, closed afterwards (a Storage given is used as is and
    left open); StorageError if there is none (reading creates nothing)."""
    if isinstance(storage, Storage):
        yield storage
        return
    opened = get_storage(storage)
    if not opened.exists():
        raise StorageError(
            f"there is no storage at {storage}: check --storage (a run creates it when it "
            "first stores results)"
        )
    try:
        yield opened
    finally:
        opened.close()


def find_experiment(storage: Storage, url: str, name: str) -> ExperimentInfo:
    """The experiment called ``name``; ExperimentNotFoundError with a hint if there is none."""
    check_experiment_name(name)
    for info in storage.list_experiments():
        if info.name == name:
            return info
    raise ExperimentNotFoundError(
        f"experiment {name!r} not found in {url} (see 'dotevals list{storage_option(url)}')"
    )


def evaluation_names(storage: Storage, url: str, experiment: str, only: str | None) -> list[str]:
    """The evaluations of ``experiment``, or just ``only``; ConfigurationError listing
    them when ``only`` is not one of them."""
    names = storage.list_evaluations(experiment)
    if only is None:
        return names
    if only not in names:
        known = ", ".join(repr(n) for n in names) or "none"
        raise ConfigurationError(
            f"evaluation {only!r} not found in experiment {experiment!r} in {url} "
            f"(its evaluations: {known})"
        )
    return [only]
