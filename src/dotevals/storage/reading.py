"""Reading stored experiments: open a storage to read it, find an experiment and
its evaluations, with a one-line error naming what is missing, and read an
evaluation's metrics with their intervals."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dotevals.errors import ConfigurationError, ExperimentNotFoundError, StorageError
from dotevals.intervals import Estimate
from dotevals.models import EvaluationSummary
from dotevals.storage import EvaluationInfo, ExperimentInfo, Storage, get_storage
from dotevals.storage.base import check_experiment_name
from dotevals.storage.location import find_project, same_storage
from dotevals.storage.naming import short_name, storage_option
from dotevals.storage.registry import storage_url

__all__ = [
    "evaluation_name",
    "evaluation_names",
    "find_experiment",
    "metric_intervals",
    "open_storage",
]


@contextmanager
def open_storage(storage: str | Storage, *, write: bool = False) -> Iterator[Storage]:
    """The storage a URL names, closed afterwards (a Storage given is used as is and
    left open); StorageError if there is none (reading creates nothing). Without
    ``write`` it is opened to read only (a database on read-only media reads)."""
    if isinstance(storage, Storage):
        yield storage
        return
    opened = get_storage(storage)
    opened.read_only = not write
    if not opened.exists():
        raise StorageError(f"there is no storage at {storage}{_where_looked(storage)}")
    try:
        yield opened
    finally:
        opened.close()


def _where_looked(url: str) -> str:
    """Where dotevals looked for the storage at ``url`` and what to do: for the
    project's own storage, how the project was found."""
    try:
        project = find_project()
        default = same_storage(url, project.storage)
    except ConfigurationError:
        default = False
    if default:
        return (
            f", {project.how_found()}. pytest creates it when it first stores results: run "
            "dotevals from the directory you ran pytest in, or give --storage"
        )
    scheme, _, location = storage_url(url).partition("://")
    place = ""
    if scheme.lower() in ("json", "sqlite") and not Path(location).is_absolute():
        place = f" ({Path(location).absolute()})"
    return f"{place}: check --storage (a run creates it when it first stores results)"


def find_experiment(storage: Storage, url: str, name: str) -> ExperimentInfo:
    """The experiment called ``name``; ExperimentNotFoundError with a hint if there is none."""
    check_experiment_name(name)
    info = storage.find_experiment(name)
    if info is not None:
        return info
    raise ExperimentNotFoundError(
        f"experiment {name!r} not found in {url} (see 'dotevals list{storage_option(url)}')"
    )


def evaluation_names(storage: Storage, url: str, experiment: str, only: str | None) -> list[str]:
    """The evaluations of ``experiment``, or just the one ``only`` names (see
    :func:`evaluation_name`)."""
    names = storage.list_evaluations(experiment)
    return names if only is None else [evaluation_name(names, only, experiment, url)]


def evaluation_name(names: list[str], wanted: str, experiment: str, url: str) -> str:
    """The stored evaluation ``wanted`` names: its stored name, or a short name only one
    evaluation has; ConfigurationError listing the candidates otherwise."""
    if wanted in names:
        return wanted
    matches = [n for n in names if short_name(n) == wanted]
    if len(matches) == 1:
        return matches[0]
    if matches:
        candidates = ", ".join(repr(n) for n in matches)
        raise ConfigurationError(
            f"evaluation {wanted!r} is ambiguous in experiment {experiment!r}: "
            f"give one of {candidates}"
        )
    known = ", ".join(repr(n) for n in names) or "none"
    raise ConfigurationError(
        f"evaluation {wanted!r} not found in experiment {experiment!r} in {url} "
        f"(its evaluations: {known})"
    )


def metric_intervals(
    info: EvaluationInfo | None, computed: EvaluationSummary
) -> dict[str, dict[str, dict[str, Any]]]:
    """Each score's metrics as ``{metric: Estimate.to_dict()}``: as stored when the
    evaluation last ended, else (still running, or stored before intervals were)
    ``computed`` from its records."""
    if info is not None and info.metrics is not None and info.estimates is not None:
        estimates = {
            score: {metric: Estimate.from_dict(data) for metric, data in stored.items()}
            for score, stored in info.estimates.items()
        }
    else:
        estimates = computed.estimates
    return {
        score: {metric: e.to_dict() for metric, e in metrics.items()}
        for score, metrics in estimates.items()
    }
