"""Backends written against the results interface: used through an adapter.

A backend of that interface (the one of dotevals 0.23) subclasses
:class:`~dotevals.storage.Storage` but implements ``create_evaluation``,
``update_evaluation_status``, ``add_results``, ``get_results`` and friends
instead of this project's methods. :func:`backend_factory` recognises such a
class when it is registered, and :class:`ResultsStorage` runs it: rows are
appended with ``add_results`` and read back with ``get_results`` (the newest
record of a row wins), evaluations are created with ``create_evaluation`` and
their status set with ``update_evaluation_status``, failed records are removed
with ``remove_error_results_batch`` (or ``remove_error_result`` row by row, if
the backend has no batch of its own). The interface has no run lock, so the
adapter keeps one in a lock file of this host.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from dotevals.errors import ExperimentExistsError, ExperimentNotFoundError
from dotevals.models import Evaluation, EvaluationStatus, Record
from dotevals.storage.base import EvaluationInfo, ExperimentInfo, LockOwner, Storage, implements
from dotevals.storage.lockfile import FileLocks

__all__ = ["ResultsStorage", "backend_factory"]

#: The methods a backend of the results interface implements.
RESULTS_METHODS = (
    "create_experiment",
    "delete_experiment",
    "rename_experiment",
    "list_experiments",
    "create_evaluation",
    "load_evaluation",
    "update_evaluation_status",
    "list_evaluations",
    "add_results",
    "get_results",
)


def backend_factory(cls: Any) -> Callable[[str], Storage]:
    """What opens a location with backend class ``cls``: the class itself, or an adapter.

    TypeError when ``cls`` implements neither interface completely.
    """
    if not isinstance(cls, type):
        raise TypeError(f"a storage backend must be a class, got {cls!r}")
    if issubclass(cls, Storage) and not inspect.isabstract(cls):
        return cls
    if implements(cls, "add_results") and implements(cls, "get_results"):
        missing = [m for m in RESULTS_METHODS if not implements(cls, m)]
        if not missing:
            return functools.partial(ResultsStorage, cls)
    elif issubclass(cls, Storage):
        missing = sorted(cls.__abstractmethods__)
    else:
        raise TypeError(f"a storage backend must subclass dotevals.storage.Storage, got {cls!r}")
    raise TypeError(f"storage backend {cls.__qualname__} does not implement {', '.join(missing)}")


def _open(cls: type, location: str) -> Any:
    """An instance of ``cls``; this project's methods it leaves abstract are never called."""
    if inspect.isabstract(cls):
        concrete: Any = type(cls.__name__, (cls,), {"__module__": cls.__module__})
        concrete.__abstractmethods__ = frozenset()
        return concrete(location)
    return cls(location)


class ResultsStorage(Storage):
    """This project's storage interface over a backend of the results interface."""

    def __init__(self, backend_class: type, location: str):
        super().__init__(location)
        self.backend = _open(backend_class, location)
        self._locks = FileLocks()  # the interface has no lock: one file per experiment

    # Experiments -------------------------------------------------------
    def create_experiment(self, name: str, *, ephemeral: bool = False) -> None:
        self.backend.create_experiment(name)  # the interface keeps no "ephemeral" flag

    def experiments(self) -> list[ExperimentInfo]:
        infos = [ExperimentInfo(name, self._created_at(name)) for name in self._names()]
        return sorted(infos, key=lambda e: e.created_at)

    def _names(self) -> list[str]:
        return list(self.backend.list_experiments())

    def _created_at(self, experiment: str) -> float:
        """When its first evaluation started (the interface keeps no experiment date)."""
        starts = [
            info.started_at
            for name in self.list_evaluations(experiment)
            if (info := self.evaluation_info(experiment, name)) and info.started_at
        ]
        return min(starts, default=0.0)

    def _require(self, name: str) -> None:
        if name not in self._names():
            raise ExperimentNotFoundError(f"no experiment {name!r} in {self.url}")

    def delete_experiment(self, name: str) -> None:
        self._require(name)
        self.backend.delete_experiment(name)

    def rename_experiment(self, old: str, new: str) -> None:
        self._require(old)
        if new in self._names():
            raise ExperimentExistsError(f"cannot rename {old!r}: experiment {new!r} already exists")
        self.backend.rename_experiment(old, new)

    # Evaluations -------------------------------------------------------
    def list_evaluations(self, experiment: str) -> list[str]:
        return list(self.backend.list_evaluations(experiment))

    def save_evaluation(self, experiment: str, info: EvaluationInfo) -> None:
        status = EvaluationStatus(info.status)
        if self.backend.load_evaluation(experiment, info.name) is None:
            evaluation = Evaluation(
                evaluation_name=info.name,
                status=status,
                started_at=info.started_at or 0.0,
                metadata=dict(info.metadata),
                completed_at=info.ended_at,
            )
            self.backend.create_evaluation(experiment, evaluation)
        else:
            self.backend.update_evaluation_status(experiment, info.name, status)

    def evaluation_info(self, experiment: str, evaluation: str) -> EvaluationInfo | None:
        stored = self.backend.load_evaluation(experiment, evaluation)
        if stored is None:
            return None
        return EvaluationInfo(
            name=evaluation,
            status=EvaluationStatus(getattr(stored.status, "value", stored.status)).value,
            started_at=stored.started_at,
            ended_at=stored.completed_at,
            metadata=dict(stored.metadata or {}),
        )

    # Records -----------------------------------------------------------
    def add_records(self, experiment: str, evaluation: str, records: Sequence[Record]) -> None:
        self.backend.add_results(experiment, evaluation, list(records))

    def iter_records(self, experiment: str, evaluation: str) -> Iterator[Record]:
        return iter(self.backend.get_results(experiment, evaluation))

    def remove_failed_records(
        self, experiment: str, evaluation: str, item_ids: Iterable[int]
    ) -> None:
        rows = list(item_ids)
        if implements(type(self.backend), "remove_error_results_batch"):
            self.backend.remove_error_results_batch(experiment, evaluation, rows)
        else:
            for item_id in rows:
                self.backend.remove_error_result(experiment, evaluation, item_id)

    # Locks -------------------------------------------------------------
    def _lock_path(self, experiment: str) -> Path:
        key = hashlib.sha256(f"{self.url}\0{experiment}".encode()).hexdigest()[:24]
        directory = Path(tempfile.gettempdir()) / "dotevals-locks"
        directory.mkdir(exist_ok=True)
        return directory / f"{key}.lock"

    def lock_experiment(self, experiment: str, owner: LockOwner) -> LockOwner | None:
        return self._locks.take(experiment, self._lock_path(experiment), owner, self.url)

    def unlock_experiment(self, experiment: str, owner: LockOwner) -> None:
        self._locks.release(experiment)

    def close(self) -> None:
        self._locks.release_all()
