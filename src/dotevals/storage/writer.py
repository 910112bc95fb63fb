"""The experiment store and its record writers: status, metadata, locks, resume, batched writes.

An experiment is named, or ephemeral (a timestamp and a short id) when no
name is given. Running an evaluation again in the same experiment resumes it:
rows stored without an error are skipped, errored rows run again, once the
dataset's rows are checked against the stored ones (:mod:`~dotevals.storage.resume`).
"""

from __future__ import annotations

import contextlib
import platform
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from dotevals.errors import ExperimentInUseError, StorageError
from dotevals.models import EvaluationSummary, Record, ScoreTally
from dotevals.storage import EvaluationInfo, Storage, get_storage
from dotevals.storage.base import LockOwner, Status, check_experiment_name
from dotevals.storage.encoding import storable
from dotevals.storage.naming import short_name
from dotevals.storage.provenance import Fingerprint, git_commit, git_dirty, versions
from dotevals.storage.resume import StoredRows

if TYPE_CHECKING:
    import tenacity

    from dotevals._run.budget import Budget
    from dotevals.metrics import Reducer

__all__ = ["ExperimentStore", "RecordWriter"]


def ephemeral_name() -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"


class ExperimentStore:
    """One experiment in one storage, as a run sees it: the lock that keeps other runs
    out, and a :class:`RecordWriter` per evaluation started."""

    def __init__(self, storage: str | Storage | None = None, experiment_name: str | None = None):
        if storage is None:
            from dotevals.storage.location import default_storage

            storage = default_storage()
        self.storage = get_storage(storage)
        self.ephemeral = experiment_name is None
        self.experiment_name = (
            ephemeral_name() if experiment_name is None else check_experiment_name(experiment_name)
        )
        self._created = False
        self._owner: LockOwner | None = None
        #: What evaluations stored, read before they started (``remaining_rows``), by name.
        self._stored: dict[str, tuple[ScoreTally, StoredRows]] = {}

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
        self._stored.clear()  # read for this run: the next one reads again
        if self._owner is not None:
            self.storage.unlock_experiment(self.experiment_name, self._owner)
            self._owner = None

    def delete(self) -> None:
        """Delete the experiment with everything in it; ExperimentInUseError, as a second
        run gets, while a run holds it."""
        self.lock()
        try:
            self.storage.delete_experiment(self.experiment_name)
        finally:
            self.unlock()

    def rename(self, new: str) -> None:
        """Rename the experiment; ExperimentInUseError, as a second run gets, while a run
        holds it."""
        self.lock()
        try:
            self.storage.rename_experiment(self.experiment_name, new)
            self.experiment_name = new  # its lock goes with it
        finally:
            self.unlock()

    def start_evaluation(
        self,
        name: str,
        metadata: dict[str, Any] | None = None,
        notify: Callable[[str], None] | None = None,
        *,
        short: str | None = None,
        key: str | None = None,
        epochs: int = 1,
        reducers: Sequence[Reducer] = (),
        budget: Budget | None = None,
    ) -> RecordWriter:
        """Mark an evaluation as running and learn which samples are already done.

        ``notify`` is told when storage keeps failing (see :class:`RecordWriter`).
        ``short`` is the evaluation's short name (see :func:`~dotevals.storage.naming.short_name`):
        an evaluation dotevals 0.23 stored under it is resumed under its 0.23 name.
        ``key`` is the column rows are matched by on resume (see
        :class:`~dotevals.storage.resume.StoredRows`). Each row is scored ``epochs``
        times, its values reduced by ``reducers``; the ``budget`` stops new rows.
        """
        self._create()
        if short is not None:
            name = self._stored_name(name, short)
        # read what is stored first: unreadable storage leaves the evaluation as it was
        tally, stored = self._stored.pop(name) if name in self._stored else self._read(name, key)
        previous = self.storage.evaluation_info(self.experiment_name, name)
        info = EvaluationInfo(
            name=name,
            status="running",
            started_at=previous.started_at if previous else time.time(),
            metadata={
                **(previous.metadata if previous else {}),
                **(metadata or {}),
                "git_commit": git_commit(),
                "git_dirty": git_dirty(),
                "python": platform.python_version(),
                "versions": versions(),
                "epochs": epochs,
                "reducers": [r.label for r in reducers],
                "last_run_at": time.time(),
            },
        )
        self.storage.save_evaluation(self.experiment_name, info)
        if budget is not None:
            budget.follow(name, tally)
        return RecordWriter(
            self.storage,
            self.experiment_name,
            info,
            tally,
            notify,
            stored,
            previous=previous,
            epochs=epochs,
            reducers=reducers,
            budget=budget,
        )

    def spent(self, budget: Budget) -> None:
        """Give ``budget`` what each evaluation of the experiment stored so far."""
        infos = [
            self.storage.evaluation_info(self.experiment_name, name)
            for name in self.storage.list_evaluations(self.experiment_name)
        ]
        budget.remember([info for info in infos if info is not None])

    def _read(self, name: str, key: str | None) -> tuple[ScoreTally, StoredRows]:
        """The tally of what evaluation ``name`` stored, and its rows for resume."""
        tally, stored = ScoreTally(), StoredRows(name, key)
        for record in self.storage.iter_records(self.experiment_name, name):
            tally.add(record)
            stored.add(record)
        return tally, stored

    def remaining_rows(
        self,
        name: str,
        total: int | None,
        samples: int | None,
        *,
        short: str | None = None,
        key: str | None = None,
        epochs: int = 1,
    ) -> int | None:
        """How many of an evaluation's ``total`` rows times ``epochs`` samples a run would
        still run: those not stored without an error, of at most ``samples`` rows; None
        when ``total`` is unknown. What it reads is kept for :meth:`start_evaluation`,
        which then reads nothing."""
        if total is None:
            return None if samples is None else samples * epochs
        done = 0
        try:
            if self.storage.experiment_exists(self.experiment_name):
                if short is not None:
                    name = self._stored_name(name, short)
                tally, _ = self._stored[name] = self._read(name, key)
                done = sum(
                    sum(1 for item_id in tally.completed(epoch) if item_id < total)
                    for epoch in range(epochs)
                )
        except Exception:  # the evaluation reports it when it starts
            self._stored.pop(name, None)
        remaining = total * epochs - done
        return remaining if samples is None else min(remaining, samples * epochs)

    def _stored_name(self, name: str, short: str) -> str:
        """``name``, or the one evaluation dotevals 0.23 stored as ``short`` (0.23 names
        have no file and a ``None`` per column) if nothing is stored under ``name``."""
        if self.storage.evaluation_info(self.experiment_name, name) is not None:
            return name
        found = [
            stored
            for stored in self.storage.list_evaluations(self.experiment_name)
            if "::" not in stored and stored != short and short_name(stored) == short
        ]
        return found[0] if len(found) == 1 else name


class RecordWriter:
    """The batching record writer of one evaluation: takes its records as they arrive
    and writes them in batches.

    A background thread writes the waiting records every ``FLUSH_SECONDS``, at
    once when ``FLUSH_ROWS`` are waiting, also while a slow row keeps the next
    record from arriving. Rows are never held up by a write: a batch is taken
    out of the buffer before it is written. A failed write is retried with
    backoff, its records kept in memory; ``notify`` is told (by ``add``, on
    the thread that adds records) once when storage has failed for
    ``WARN_AFTER`` seconds, and again when it works again.
    ``finish`` keeps retrying until storage has failed for ``WRITE_PATIENCE``
    seconds, then raises StorageError.
    """

    FLUSH_ROWS = 1000
    FLUSH_SECONDS = 0.5
    WARN_AFTER = 5.0
    WRITE_PATIENCE = 10.0

    def __init__(
        self,
        storage: Storage,
        experiment: str,
        info: EvaluationInfo,
        tally: ScoreTally,
        notify: Callable[[str], None] | None = None,
        stored: StoredRows | None = None,
        *,
        previous: EvaluationInfo | None = None,
        epochs: int = 1,
        reducers: Sequence[Reducer] = (),
        budget: Budget | None = None,
    ):
        self.storage = storage
        self.experiment = experiment
        self.info = info
        self.tally = tally
        self.stored_rows = stored or StoredRows(info.name)
        self.epochs = epochs
        self.reducers = list(reducers)
        self.budget = budget
        #: Why the budget stopped new rows while some were left (None: it did not).
        self.budget_stop: str | None = None
        #: The rows stored without an error, for each epoch.
        self.completed_epochs = [tally.completed(epoch) for epoch in range(epochs)]
        #: The samples (item_id, epoch) stored with an error before this run: they run again.
        self.errored_before = {
            (item_id, epoch)
            for epoch in range(max(epochs, tally.epochs))
            for item_id in tally.failed(epoch)
        }
        self.fingerprint = Fingerprint()
        #: The evaluation as stored before this run (its status and end time).
        self.previous = previous
        self.done = 0
        self.errors = 0
        #: Rows written by this run, and those of them that had errored before.
        self.stored = 0
        self.stored_again = 0
        self._notify = notify
        self._notices: list[str] = []  # told by the thread that takes records
        self._buffer: list[Record] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._failing_since: float | None = None
        self._warned = False
        self._flusher = threading.Thread(
            target=self._flush_periodically, name=f"dotevals-flush-{info.name}", daemon=True
        )
        self._flusher.start()

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def completed(self) -> set[int]:
        """The rows stored without an error in every epoch."""
        return set.intersection(*self.completed_epochs)

    def pending(
        self, rows: Iterator[tuple[int, Any]], samples: int | None
    ) -> Iterator[tuple[int, int, Any]]:
        """The samples still to run, as (item_id, epoch, row): each epoch of a row not
        completed before, of at most ``samples`` rows, each row under its item_id (see
        :meth:`StoredRows.place`, which raises DatasetError when the dataset no longer
        gives the rows stored before). Once the budget is reached, none.
        The rows read go into :attr:`fingerprint`."""
        if samples == 0:
            return
        taken = 0
        budget = self.budget if self.budget is not None and self.budget.limited else None
        epochs = range(self.epochs)
        completed = self.completed_epochs
        if (
            self.epochs == 1
            and not completed[0]
            and budget is None
            and samples is None
            and self.stored_rows.checks_nothing
        ):  # a first run of every row once: each row as it comes
            add = self.fingerprint.add
            for position, row in rows:
                add(row)
                yield position, 0, row
            return
        for position, row in rows:
            item_id = self.stored_rows.place(position, row)
            self.fingerprint.add(row)
            started = False
            for epoch in epochs:
                if item_id in completed[epoch]:
                    continue
                if budget is not None and self._over(budget):
                    return
                started = True
                yield item_id, epoch, row
            if started:
                taken += 1
                if taken == samples:  # stop before reading a row that will not run
                    return

    def _over(self, budget: Budget) -> bool:
        """The budget is reached: no new sample starts."""
        self.budget_stop = budget.reached()
        return self.budget_stop is not None

    def add(self, record: Record) -> None:
        """Take one record; the background thread writes it."""
        record = storable(record)  # the tally sees what storage will give back
        with self._lock:
            self._buffer.append(record)
            # woken once: setting the event again, row after row until the background
            # thread gets to run, would cost each of those rows a lock
            if len(self._buffer) >= self.FLUSH_ROWS and not self._wake.is_set():
                self._wake.set()
        if self._notices:  # rare: taken under the lock, told outside it
            with self._lock:
                notices, self._notices = self._notices, []
            for text in notices:
                self._tell(text)
        self.tally.add(record)
        self.done += 1
        self.errors += record.failed

    def _write(self) -> None:
        """Write the waiting records; they go back to the front of the buffer if that fails."""
        with self._lock:
            batch, self._buffer = self._buffer, []
        if not batch:
            return
        try:
            self.storage.add_records(self.experiment, self.name, batch)
        except BaseException:
            with self._lock:
                self._buffer[:0] = batch
            raise
        before = self.errored_before
        again = sum(1 for r in batch if (r.item_id, r.epoch) in before) if before else 0
        with self._lock:
            self.stored += len(batch)
            self.stored_again += again

    def _write_retrying(
        self,
        stop: Callable[[tenacity.RetryCallState], bool],
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``_write`` with retries and backoff until ``stop`` says so (the last error is raised)."""
        try:
            self._write()  # the usual case: tenacity is imported once a write fails
        except Exception:
            import tenacity

            retrying = tenacity.Retrying(
                retry=tenacity.retry_if_exception_type(Exception),
                wait=tenacity.wait_exponential(multiplier=0.05, max=2.0),
                stop=stop,
                before_sleep=self._write_failed,
                sleep=sleep,
                reraise=True,
            )
            retrying(self._write)
        if self._failing_since is not None:
            self._failing_since = None
            if self._warned:
                self._warned = False
                self._queue(f"dotevals: {self.storage.url} works again; {self.name} goes on")

    def _write_failed(self, state: tenacity.RetryCallState) -> None:
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        if not self._warned and now - self._failing_since >= self.WARN_AFTER:
            self._warned = True
            assert state.outcome is not None
            self._queue(
                f"dotevals: cannot store rows of {self.name} in {self.storage.url} "
                f"({state.outcome.exception()}); {self.unstored} rows wait in memory, retrying"
            )

    def _queue(self, text: str) -> None:
        """A notice for the user, given by the next ``add`` or by ``finish``."""
        with self._lock:
            self._notices.append(text)

    def _tell(self, text: str) -> None:
        if self._notify is not None:
            self._notify(text)

    def _flush_periodically(self) -> None:
        """Write every ``FLUSH_SECONDS`` (sooner when woken) until ``finish`` takes over."""
        while not self._stopped.is_set():
            self._wake.wait(self.FLUSH_SECONDS)
            self._wake.clear()
            try:
                # finish() ends the waits between attempts, and takes over
                self._write_retrying(lambda _: self._stopped.is_set(), self._pause)
            except Exception:  # finish() writes them, or says why not
                continue

    def _pause(self, seconds: float) -> None:
        """Wait between write attempts; ``finish`` ends the wait."""
        self._stopped.wait(seconds)

    def _out_of_patience(self, state: tenacity.RetryCallState) -> bool:
        since = self._failing_since
        return since is not None and time.monotonic() - since >= self.WRITE_PATIENCE

    def finish(self, status: Status) -> EvaluationSummary:
        """Write what is left, record the status and return every row's summary.

        An evaluation whose rows all ran but a metric of which cannot be computed
        (see ``EvaluationSummary.metric_errors``) is recorded as failed. StorageError
        when the records cannot be written; what was stored stays. Whatever stops it,
        the evaluation is left "running" only if storage cannot record even its status.
        """
        self._stopped.set()
        self._wake.set()
        self._flusher.join()
        self._notices.clear()  # what they said is settled below
        try:
            self._write_retrying(self._out_of_patience)
        except Exception as exc:
            with contextlib.suppress(Exception):  # storage is failing: the error says so
                self._save_info("failed", self.stored_summary())
            raise StorageError(
                f"{self.unstored} finished rows of {self.name} could not be stored in "
                f"{self.storage.url} ({exc}); the rows stored before are kept: fix the "
                "storage and run again to score the rest"
            ) from exc
        except BaseException:  # Ctrl-C while the last rows were written
            with contextlib.suppress(Exception):
                self._save_info("interrupted", None)
            raise
        summary = EvaluationSummary.from_tally(
            self.tally,
            lambda: self.storage.load_records(self.experiment, self.name),
            self.reducers,
        )
        if status == "completed" and summary.metric_errors:
            status = "failed"
        self._save_info(status, summary)
        return summary

    @property
    def unstored(self) -> int:
        """Rows taken but not (yet) written."""
        with self._lock:
            return len(self._buffer)

    def stored_summary(self) -> EvaluationSummary | None:
        """The summary of the rows in storage, None if it cannot be read."""
        try:
            records = self.storage.load_records(self.experiment, self.name)
            return EvaluationSummary(records, self.reducers)
        except Exception:  # the write error is the one to report
            return None

    def _save_info(self, status: Status, summary: EvaluationSummary | None) -> None:
        """Record how the run ended: ``status`` with the rows and metrics of ``summary``
        (None: unknown). When they cannot be computed (a metric raised), the status
        is recorded as "failed" ("interrupted" by Ctrl-C) and the error raised. A run
        that ran no row and ends as the stored one did keeps its end time."""
        previous = self.previous
        self.info.status = status
        if self.done == 0 and previous is not None and previous.status == status:
            self.info.ended_at = previous.ended_at  # a run that ran no row changed nothing
        else:
            self.info.ended_at = time.time()
        if self.fingerprint.read:
            self.info.metadata["dataset_fingerprint"] = self.fingerprint.hexdigest()
            self.info.metadata["dataset_rows_read"] = self.fingerprint.rows
        try:
            if summary is not None:
                self.info.metadata.update(_accounts(summary))
                estimates = summary.estimates
                self.info.metrics = {
                    s: {m: e.value for m, e in ms.items()} for s, ms in estimates.items()
                }
                self.info.estimates = _intervals(estimates)
                reduced = summary.reduced
                self.info.reduced = (
                    {r: _intervals(by_score) for r, by_score in reduced.items()}
                    if reduced
                    else None
                )
        except BaseException as exc:
            self.info.status = "failed" if isinstance(exc, Exception) else "interrupted"
            raise
        finally:
            self.storage.save_evaluation(self.experiment, self.info)


def _intervals(estimates: dict[str, dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    return {s: {m: e.to_dict() for m, e in ms.items()} for s, ms in estimates.items()}


def _accounts(summary: EvaluationSummary) -> dict[str, Any]:
    """What an evaluation's bookkeeping says of its stored samples: counts, usage and
    cost by model, latency, and the settings its model calls recorded."""
    latency = summary.latency
    return {
        "rows": summary.rows,
        "errors": summary.errors,
        "samples": summary.samples,
        "usage": {model: u.to_dict() for model, u in summary.usage.items()},
        "cost": summary.cost,
        "latency": None if latency is None else {"p50": latency[0], "p95": latency[1]},
        "model_settings": summary.settings,
    }
