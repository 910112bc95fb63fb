"""The interface every storage backend implements, and dotevals 0.23's built on it.

The main process is the only writer. Records are appended as they arrive; a
row can be written more than once (an errored row retried on resume), and
readers keep the newest record of each ``item_id``, in ``item_id`` order.

A backend implements the abstract methods of :class:`Storage`. Every backend
then also offers dotevals 0.23's interface (``list_experiments`` giving names,
``create_evaluation``, ``load_evaluation`` giving an
:class:`~dotevals.models.Evaluation`, ``add_results``, ``get_results``...),
made of those methods. Two of this interface's methods had 0.23's names before:
``experiments`` was ``list_experiments`` and ``evaluation_info`` was
``load_evaluation``; a backend that still implements them under those names
(overriding them below the class that defines the new ones) has them taken as
the new ones, and keeps its own ``list_experiments`` and ``load_evaluation`` as
they are.
"""

from __future__ import annotations

import os
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from dotevals.errors import ConfigurationError, EvaluationNotFoundError
from dotevals.models import Evaluation, EvaluationStatus, Record, sort_records

Status = Literal["running", "completed", "failed", "interrupted"]

#: The store format this dotevals writes. 1: a record per row (every store before
#: repeats, dotevals 0.23's too: a store that names no format is of format 1); 2: a
#: record per (row, epoch), with its duration, usage and cost. A run upgrades a store
#: of an older format as it opens it; reading leaves it as it is.
FORMAT = 2


def check_experiment_name(name: str) -> str:
    """``name`` if it can name an experiment; ConfigurationError saying why not."""
    if not name.strip():
        raise ConfigurationError(
            f"experiment name {name!r} is blank: give a name (a run without --experiment "
            "stores its results in a new ephemeral experiment)"
        )
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigurationError(
            f"experiment name {name!r} is not valid text (bytes that are not UTF-8): "
            "choose a name in UTF-8"
        ) from None
    return name


@dataclass
class ExperimentInfo:
    """An experiment as listed by storage; ``format`` is the store format of its
    bookkeeping (see :data:`FORMAT`)."""

    name: str
    created_at: float
    ephemeral: bool = False
    format: int = 1


@dataclass
class EvaluationInfo:
    """The bookkeeping of one evaluation inside an experiment.

    ``metrics`` and ``estimates`` are those of the
    :class:`~dotevals.models.EvaluationSummary` of its stored rows when it last
    ended (None while it has not); stored under the keys ``summary`` and
    ``intervals``.
    """

    name: str
    status: Status = "running"
    started_at: float | None = None
    ended_at: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    #: ``{score: {metric: value}}``.
    metrics: dict[str, dict[str, float]] | None = None
    #: ``{score: {metric: Estimate.to_dict()}}``: each metric's stderr and 95 % interval.
    estimates: dict[str, dict[str, dict[str, Any]]] | None = None
    #: ``{reducer: {score: {metric: Estimate.to_dict()}}}`` of an evaluation with repeats
    #: (None without): the metrics of each reducer (``estimates`` are the first one's).
    reduced: dict[str, dict[str, dict[str, dict[str, Any]]]] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The stored form: ``metrics`` under ``summary``, ``estimates`` under ``intervals``;
        ``reduced`` only when there is one."""
        data = asdict(self)
        data["summary"] = data.pop("metrics")
        data["intervals"] = data.pop("estimates")
        if data["reduced"] is None:
            del data["reduced"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvaluationInfo:
        known = {STORED_AS.get(k, k): v for k, v in data.items()}
        return cls(**{k: known[k] for k in cls.__dataclass_fields__ if k in known})


#: The fields of EvaluationInfo stored under another key.
STORED_AS = {"summary": "metrics", "intervals": "estimates"}


@dataclass
class LockOwner:
    """The process running an experiment."""

    pid: int
    host: str
    since: float

    @classmethod
    def me(cls) -> LockOwner:
        return cls(os.getpid(), socket.gethostname(), time.time())

    def is_this_process(self) -> bool:
        """True when the owner is the process asking."""
        return self.pid == os.getpid() and self.host == socket.gethostname()

    def is_stale(self) -> bool:
        """True when the owner was a process of this host that is gone.

        The process asking is alive, so never stale; a lock taken on another
        host cannot be checked and is never stale either.
        """
        if self.host != socket.gethostname() or self.pid == os.getpid():
            return False
        import psutil  # here: only a lock another process left needs it

        try:
            process = psutil.Process(self.pid)
            # a zombie is dead; a process started after the lock reuses a dead one's pid
            return process.status() == psutil.STATUS_ZOMBIE or process.create_time() > self.since
        except psutil.NoSuchProcess:
            return True

    def describe(self) -> str:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        return f"process {self.pid} on {self.host}, since {started}"


#: The methods that had dotevals 0.23's names before: name -> former name.
FORMER_NAMES = {"experiments": "list_experiments", "evaluation_info": "load_evaluation"}


class Storage(ABC):
    """A place experiments, evaluations and their records live.

    Backends are chosen by URL scheme (``json://PATH``, ``sqlite://PATH``);
    ``location`` is the URL without its scheme.
    """

    scheme: str = ""
    #: Set, before the first use, by code that only reads (the reading commands,
    #: ``dotevals.load``): the backend may then open its storage read-only.
    read_only: bool = False

    def __init__(self, location: str):
        self.location = location

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not (implements(cls, "add_records") or implements(cls, "iter_records")):
            return  # a backend of 0.23's interface: see storage/compat.py
        mro = cls.__mro__
        for name, former in FORMER_NAMES.items():
            written = _owner(cls, former)
            if written is not Storage and mro.index(written) < mro.index(_owner(cls, name)):
                setattr(cls, name, getattr(cls, former))  # written when it had the former name

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.location}"

    def exists(self) -> bool:
        """True when there is something to read: reading never creates storage."""
        return True

    def holds(self, path: Path) -> bool:
        """True when writing a file at ``path`` (symlinks followed) would write into
        this storage; a backend that keeps no files says False."""
        return False

    # Experiments -------------------------------------------------------
    @abstractmethod
    def create_experiment(self, name: str, *, ephemeral: bool = False) -> None:
        """Create the experiment if it does not exist yet (idempotent)."""

    @abstractmethod
    def experiments(self) -> list[ExperimentInfo]:
        """Every experiment, oldest first."""

    def list_experiments(self) -> list[str]:
        """The name of every experiment, oldest first."""
        return [e.name for e in self.experiments()]

    def experiment_exists(self, name: str) -> bool:
        return any(e.name == name for e in self.experiments())

    def find_experiment(self, name: str) -> ExperimentInfo | None:
        """The experiment called ``name``, or None. Unlike :meth:`experiments`, which
        leaves out (with a warning) an experiment whose bookkeeping is damaged, this
        raises StorageError naming what is damaged."""
        return next((e for e in self.experiments() if e.name == name), None)

    @abstractmethod
    def delete_experiment(self, name: str) -> None:
        """Remove the experiment and everything in it; ExperimentNotFoundError if absent."""

    @abstractmethod
    def rename_experiment(self, old: str, new: str) -> None:
        """Rename; ExperimentNotFoundError if ``old`` is absent, ExperimentExistsError if
        ``new`` exists."""

    # Evaluations -------------------------------------------------------
    @abstractmethod
    def list_evaluations(self, experiment: str) -> list[str]:
        """Names of the evaluations of an experiment, in the order they were first saved;
        ``[]`` for an experiment that does not exist."""

    @abstractmethod
    def save_evaluation(self, experiment: str, info: EvaluationInfo) -> None:
        """Create or replace the bookkeeping of one evaluation."""

    @abstractmethod
    def evaluation_info(self, experiment: str, evaluation: str) -> EvaluationInfo | None:
        """The bookkeeping of one evaluation, or None if it was never saved."""

    # Records -----------------------------------------------------------
    @abstractmethod
    def add_records(self, experiment: str, evaluation: str, records: Sequence[Record]) -> None:
        """Append records durably (one call is one batch)."""

    @abstractmethod
    def iter_records(self, experiment: str, evaluation: str) -> Iterator[Record]:
        """Every stored record, one at a time, a row's newer record after its older ones."""

    def load_records(self, experiment: str, evaluation: str) -> list[Record]:
        """The newest record of each row, in ``item_id`` order."""
        return sort_records(self.iter_records(experiment, evaluation))

    def remove_failed_records(
        self, experiment: str, evaluation: str, item_ids: Iterable[int]
    ) -> None:
        """Delete the records of these rows that failed (their other records stay).

        Optional: only ``remove_error_result(s)`` uses it.
        """
        raise NotImplementedError(
            f"storage backend {type(self).__qualname__} cannot remove records: "
            "it does not implement remove_failed_records"
        )

    # Locks -------------------------------------------------------------
    @abstractmethod
    def lock_experiment(self, experiment: str, owner: LockOwner) -> LockOwner | None:
        """Take the experiment's run lock for ``owner``.

        Returns None when taken, or the live owner holding it. A lock left by a
        process that is gone is taken over.
        """

    @abstractmethod
    def unlock_experiment(self, experiment: str, owner: LockOwner) -> None:
        """Release the lock if ``owner`` holds it."""

    def close(self) -> None:  # noqa: B027 (optional hook, not abstract)
        """Release files and connections."""

    # dotevals 0.23's interface, made of the methods above ---------------
    # An evaluation name with "/" means the evaluation of that name if there is one,
    # else the one stored with "@" for "/", as 0.23 stored it.
    def _name_023(self, experiment: str, evaluation: str) -> str:
        if "/" not in evaluation or self.evaluation_info(experiment, evaluation) is not None:
            return evaluation
        return evaluation.replace("/", "@")

    def _info_023(self, experiment: str, evaluation: str) -> EvaluationInfo:
        info = self.evaluation_info(experiment, self._name_023(experiment, evaluation))
        if info is None:
            raise EvaluationNotFoundError(
                f"no evaluation {evaluation!r} in experiment {experiment!r} in {self.url}: "
                "create it first with create_evaluation"
            )
        return info

    def create_evaluation(self, experiment: str, evaluation: Evaluation) -> None:
        """Create the evaluation, and its experiment, unless it exists (then nothing
        changes). A ``/`` in its name is stored as ``@``."""
        name = self._name_023(experiment, evaluation.evaluation_name)
        self.create_experiment(experiment)
        if self.evaluation_info(experiment, name) is None:
            info = EvaluationInfo(
                name=name,
                status=_status(evaluation.status),
                started_at=evaluation.started_at,
                ended_at=evaluation.completed_at,
                metadata=dict(evaluation.metadata),
            )
            self.save_evaluation(experiment, info)

    def load_evaluation(self, experiment: str, evaluation: str) -> Evaluation | None:
        """The evaluation as an :class:`~dotevals.models.Evaluation`, or None."""
        info = self.evaluation_info(experiment, self._name_023(experiment, evaluation))
        if info is None:
            return None
        return Evaluation(
            evaluation_name=info.name,
            status=EvaluationStatus(info.status),
            started_at=info.started_at or 0.0,
            metadata=dict(info.metadata),
            completed_at=info.ended_at,
        )

    def update_evaluation_status(
        self, experiment: str, evaluation: str, status: EvaluationStatus
    ) -> None:
        """Set the status (and the end time, None while running); EvaluationNotFoundError
        if the evaluation does not exist."""
        info = self._info_023(experiment, evaluation)
        info.status = _status(status)
        info.ended_at = None if info.status == "running" else time.time()
        self.save_evaluation(experiment, info)

    def completed_items(self, experiment: str, evaluation: str) -> list[int]:
        """The rows stored without an error, in order."""
        records = self.load_records(experiment, self._name_023(experiment, evaluation))
        return [r.item_id for r in records if not r.failed]

    def add_results(self, experiment: str, evaluation: str, results: Sequence[Record]) -> None:
        """Append records; EvaluationNotFoundError if the evaluation does not exist."""
        info = self._info_023(experiment, evaluation)
        self.add_records(experiment, info.name, list(results))

    def get_results(self, experiment: str, evaluation: str) -> list[Record]:
        """The newest record of each row, in order (``[]`` when none are stored)."""
        return self.load_records(experiment, self._name_023(experiment, evaluation))

    def remove_error_result(self, experiment: str, evaluation: str, item_id: int) -> None:
        """Delete the failed records of one row, so that it counts as not run."""
        self.remove_error_results_batch(experiment, evaluation, [item_id])

    def remove_error_results_batch(
        self, experiment: str, evaluation: str, item_ids: Sequence[int]
    ) -> None:
        """Delete the failed records of these rows, so that they count as not run."""
        if item_ids:
            name = self._name_023(experiment, evaluation)
            self.remove_failed_records(experiment, name, item_ids)


def _status(status: EvaluationStatus | str) -> Status:
    """The stored status of an EvaluationStatus (or of its value); ValueError for another."""
    return EvaluationStatus(status).value


def _owner(cls: type, name: str) -> type:
    """The class of ``cls``'s method resolution order that defines ``name``."""
    return next(k for k in cls.__mro__ if name in vars(k))


def implements(cls: type, name: str) -> bool:
    """``cls`` has a method ``name`` of its own, not Storage's nor an abstract one."""
    method = getattr(cls, name, None)
    return (
        callable(method)
        and method is not getattr(Storage, name, None)
        and not getattr(method, "__isabstractmethod__", False)
    )
