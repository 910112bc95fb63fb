"""Experiments and the runs of their evaluations: status, metadata, resume, batched writes.

An experiment is named, or ephemeral (a timestamp and a short id) when no
name is given. Running an evaluation again in the same experiment resumes it:
rows stored without an error are skipped, errored rows run again.
"""

from __future__ import annotations

import functools
import platform
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from dotevals.errors import ExperimentInUseError
from dotevals.models import EvaluationSummary, Record, ScoreTally
from dotevals.project import short_name
from dotevals.storage import DEFAULT_STORAGE, EvaluationInfo, Storage, get_storage
from dotevals.storage.base import LockOwner, Status, check_experiment_name
from dotevals.storage.encoding import storable

__all__ = ["SessionManager", "EvaluationRun"]


def ephemeral_name() -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"


@functools.cache
def git_commit() -> str | None:
    """The commit checked out in the working directory, if it is a git repository."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


class SessionManager:
    """One experiment in one storage, as seen by a run."""

    def __init__(self, storage: str | Storage | None = None, experiment_name: str | None = None):
        self.storage = get_storage(storage or DEFAULT_STORAGE)
        self.ephemeral = experiment_name is None
        self.experiment_name = (
            ephemeral_name() if experiment_name is None else check_experiment_name(experiment_name)
        )
        self._created = False
        self._owner: LockOwner | None = None

    def _create(self) -> None:
        if not self._created:
            self.storage.create_experiment(self.experiment_name, ephemeral=self.ephemeral)
            self._created = True

    def lock(self) -> None:
        """Take the experiment for this process; ExperimentInUseError if another run has it."""
        if self._owner is not None:
            return
        self._create()
        owner = LockOwner.me()
        held = self.storage.lock_experiment(self.experiment_name, owner)
        if held is not None:
            raise ExperimentInUseError(
                f"experiment {self.experiment_name!r} in {self.storage.url} is in use by "
                f"{held.describe()}; wait for that run to end, or choose another --experiment"
            )
        self._owner = owner

    def unlock(self) -> None:
        if self._owner is not None:
            self.storage.unlock_experiment(self.experiment_name, self._owner)
            self._owner = None

    def start_evaluation(
        self, name: str, metadata: dict[str, Any] | None = None, *, short: str | None = None
    ) -> EvaluationRun:
        """Mark an evaluation as running and learn which rows are already done.

        ``short`` is the evaluation's short name (see :func:`~dotevals.project.short_name`):
        an evaluation dotevals 0.23 stored under it is resumed under its 0.23 name.
        """
        self._create()
        if short is not None:
            name = self._stored_name(name, short)
        previous = self.storage.load_evaluation(self.experiment_name, name)
        info = EvaluationInfo(
            name=name,
            status="running",
            started_at=previous.started_at if previous else time.time(),
            metadata={
                **(previous.metadata if previous else {}),
                **(metadata or {}),
                "git_commit": git_commit(),
                "python": platform.python_version(),
                "last_run_at": time.time(),
            },
        )
        # read what is stored first: unreadable storage leaves the evaluation as it was
        tally = ScoreTally(self.storage.iter_records(self.experiment_name, name))
        self.storage.save_evaluation(self.experiment_name, info)
        return EvaluationRun(self.storage, self.experiment_name, info, tally)

    def _stored_name(self, name: str, short: str) -> str:
        """``name``, or the one evaluation dotevals 0.23 stored as ``short`` (0.23 names
        have no file and a ``None`` per column) if nothing is stored under ``name``."""
        if self.storage.load_evaluation(self.experiment_name, name) is not None:
            return name
        found = [
            stored
            for stored in self.storage.list_evaluations(self.experiment_name)
            if "::" not in stored and stored != short and short_name(stored) == short
        ]
        return found[0] if len(found) == 1 else name


class EvaluationRun:
    """Takes the records of one evaluation as they arrive and writes them in batches.

    A batch is written when it holds ``FLUSH_ROWS`` records, and a background
    thread writes whatever has waited ``FLUSH_SECONDS``, also while a slow row
    keeps the next record from arriving.
    """

    FLUSH_ROWS = 1000
    FLUSH_SECONDS = 0.5

    def __init__(self, storage: Storage, experiment: str, info: EvaluationInfo, tally: ScoreTally):
        self.storage = storage
        self.experiment = experiment
        self.info = info
        self.tally = tally
        self.completed = tally.completed()
        self.done = 0
        self.errors = 0
        self._buffer: list[Record] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._flusher = threading.Thread(
            target=self._flush_periodically, name=f"dotevals-flush-{info.name}", daemon=True
        )
        self._flusher.start()

    @property
    def name(self) -> str:
        return self.info.name

    def pending(
        self, rows: Iterator[tuple[int, Any]], samples: int | None
    ) -> Iterator[tuple[int, Any]]:
        """The rows still to run: not completed before, at most ``samples`` of them."""
        if samples == 0:
            return
        taken = 0
        for item_id, row in rows:
            if item_id in self.completed:
                continue
            yield item_id, row
            taken += 1
            if taken == samples:  # stop before reading a row that will not run
                return

    def add(self, record: Record) -> None:
        record = storable(record)  # the tally sees what storage will give back
        with self._lock:
            self._buffer.append(record)
            full = len(self._buffer) >= self.FLUSH_ROWS
        self.tally.add(record)
        self.done += 1
        self.errors += record.failed
        if full:
            self.flush()

    def flush(self) -> None:
        """Write the waiting records; they stay waiting if the write fails."""
        with self._lock:
            if self._buffer:
                self.storage.add_records(self.experiment, self.name, self._buffer)
                self._buffer = []

    def _flush_periodically(self) -> None:
        while not self._stopped.wait(self.FLUSH_SECONDS):
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - the next flush, in finish(), reports it
                return

    def finish(self, status: Status) -> EvaluationSummary:
        """Write what is left, record the status and return every row's summary."""
        self._stopped.set()
        self._flusher.join()
        self.flush()
        summary = EvaluationSummary.from_tally(
            self.tally, lambda: self.storage.load_records(self.experiment, self.name)
        )
        self.info.status = status
        self.info.ended_at = time.time()
        self.info.summary = summary.summary
        self.info.metadata.update(rows=summary.rows, errors=summary.errors)
        self.storage.save_evaluation(self.experiment, self.info)
        return summary
