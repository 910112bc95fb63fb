"""The interface every storage backend implements.

The main process is the only writer. Records are appended as they arrive; a
row can be written more than once (an errored row retried on resume), and
readers keep the newest record of each ``item_id``, in ``item_id`` order.
"""

from __future__ import annotations

import os
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from dotevals.errors import ConfigurationError
from dotevals.models import Record, sort_records

Status = Literal["running", "completed", "failed", "interrupted"]


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
    """An experiment as listed by storage."""

    name: str
    created_at: float
    ephemeral: bool = False


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

    def to_dict(self) -> dict[str, Any]:
        """The stored form: ``metrics`` under ``summary``, ``estimates`` under ``intervals``."""
        data = asdict(self)
        data["summary"] = data.pop("metrics")
        data["intervals"] = data.pop("estimates")
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

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.location}"

    def exists(self) -> bool:
        """True when there is something to read: reading never creates storage."""
        return True

    # Experiments -------------------------------------------------------
    @abstractmethod
    def create_experiment(self, name: str, *, ephemeral: bool = False) -> None:
        """Create the experiment if it does not exist yet (idempotent)."""

    @abstractmethod
    def list_experiments(self) -> list[ExperimentInfo]:
        """Every experiment, oldest first."""

    def experiment_exists(self, name: str) -> bool:
        return any(e.name == name for e in self.list_experiments())

    def find_experiment(self, name: str) -> ExperimentInfo | None:
        """The experiment called ``name``, or None. Unlike :meth:`list_experiments`, which
        leaves out (with a warning) an experiment whose bookkeeping is damaged, this
        raises StorageError naming what is damaged."""
        return next((e for e in self.list_experiments() if e.name == name), None)

    @abstractmethod
    def delete_experiment(self, name: str) -> None:
        """Remove the experiment and everything in it; ExperimentNotFoundError if absent."""

    @abstractmethod
    def rename_experiment(self, old: str, new: str) -> None:
        """Rename; ExperimentNotFoundError if ``old`` is absent, StorageError if ``new`` exists."""

    # Evaluations -------------------------------------------------------
    @abstractmethod
    def list_evaluations(self, experiment: str) -> list[str]:
        """Names of the evaluations of an experiment, in the order they were first saved."""

    @abstractmethod
    def save_evaluation(self, experiment: str, info: EvaluationInfo) -> None:
        """Create or replace the bookkeeping of one evaluation."""

    @abstractmethod
    def load_evaluation(self, experiment: str, evaluation: str) -> EvaluationInfo | None:
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
