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
from dotevals.metrics import Reducer, get_reducer
from dotevals.models import EvaluationSummary
from dotevals.storage import EvaluationInfo, ExperimentInfo, Storage, get_storage
from dotevals.storage.base import check_experiment_name
from dotevals.storage.location import find_project, same_storage
from dotevals.storage.naming import short_name, storage_option
from dotevals.storage.registry import storage_url

__all__ = [
    "accounts",
    "first_reducer",
    "evaluation_name",
    "evaluation_names",
    "find_experiment",
    "metric_intervals",
    "open_storage",
    "reduced_intervals",
    "stored_reducers",
    "stored_summary",
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


def stored_reducers(info: EvaluationInfo | None) -> list[Reducer]:
    """The reducers an evaluation's bookkeeping names (those this process knows)."""
    labels = info.metadata.get("reducers") if info is not None else None
    found = []
    for label in labels if isinstance(labels, list) else []:
        try:
            found.append(get_reducer(label))
        except ConfigurationError:  # a reducer of a plugin not installed here
            continue
    return found


def first_reducer(info: EvaluationInfo | None) -> Reducer | None:
    """The reducer an evaluation's metrics are reported by (None without repeats)."""
    return next(iter(stored_reducers(info)), None)


def stored_summary(
    storage: Storage, experiment: str, evaluation: str
) -> tuple[EvaluationInfo | None, EvaluationSummary]:
    """An evaluation's bookkeeping and the summary of its stored records, reduced by the
    reducers it was run with."""
    info = storage.evaluation_info(experiment, evaluation)
    records = storage.load_records(experiment, evaluation)
    return info, EvaluationSummary(records, stored_reducers(info))


def reduced_intervals(
    info: EvaluationInfo | None, computed: EvaluationSummary
) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
    """Each reducer's metrics as :func:`metric_intervals` gives the first one's: as stored
    when the evaluation last ended, else computed (empty without repeats)."""
    if info is not None and info.reduced is not None and info.metrics is not None:
        return info.reduced
    return {
        reducer: {s: {m: e.to_dict() for m, e in ms.items()} for s, ms in by_score.items()}
        for reducer, by_score in computed.reduced.items()
    }


def accounts(summary: EvaluationSummary) -> dict[str, Any]:
    """What the stored samples used and cost, and how long they took: ``usage`` by model
    (the token counts and the ``cost`` in USD, None without a price), the total
    ``cost`` and ``tokens``, and ``latency`` (``p50``, ``p95`` seconds, or None)."""
    cost = summary.cost
    latency = summary.latency
    return {
        "usage": {
            model: {**used.counts(), "cost": cost.get(model)}
            for model, used in sorted(summary.usage.items())
        },
        "tokens": sum(u.total_tokens for u in summary.usage.values()),
        "cost": summary.total_cost,
        "latency": None if latency is None else {"p50": latency[0], "p95": latency[1]},
    }


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
