"""The batching record writer: storage that fails for a while loses nothing, and stops
nothing (a full database in a real pytest session: e2e/test_writer.py)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from pool_support import wait_until
from stores import stored_records

from dotevals.errors import StorageError
from dotevals.metrics import Metric
from dotevals.models import Record, Result, Score
from dotevals.storage.json import JSONStorage
from dotevals.storage.sqlite import SQLiteStorage
from dotevals.storage.writer import ExperimentStore, RecordWriter


def record(item_id: int) -> Record:
    return Record(Result(Score("v", item_id)), item_id, {"n": item_id})


def stored_ids(url: str, evaluation: str = "ev") -> list[int]:
    """What a separate reader finds in storage now."""
    return [r.item_id for r in stored_records(url, "exp", evaluation)]


def wait_for(condition: Callable[[], bool]) -> None:
    wait_until(condition, 30, "the writer to get there")


def test_writes_resume_after_the_database_was_locked(tmp_path: Path, monkeypatch):
    """Another connection holds the database: rows keep coming, the user is told once, and
    once the database is free every waiting row is stored by the background thread."""
    monkeypatch.setattr(RecordWriter, "WARN_AFTER", 0.3)
    path = tmp_path / "f.sqlite"
    storage = SQLiteStorage(str(path))
    messages: list[str] = []
    run = ExperimentStore(storage, "exp").start_evaluation("ev", notify=messages.append)
    with storage._db() as db:  # do not wait 5 s for the lock before each failed attempt
        db.execute("PRAGMA busy_timeout = 20")
    run.add(record(0))
    wait_for(lambda: stored_ids(f"sqlite://{path}") == [0])

    added = 1

    def add_until(condition: Callable[[], bool]) -> None:
        """Go on scoring rows, as a run does, until ``condition`` holds."""
        nonlocal added

        def one_more() -> bool:
            nonlocal added
            run.add(record(added))
            added += 1
            return condition()

        wait_for(one_more)

    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    for _ in range(RecordWriter.FLUSH_ROWS):  # a full batch: add() must not write it
        run.add(record(added))
        added += 1
    add_until(lambda: len(messages) == 1)
    assert "cannot store rows of ev in sqlite://" in messages[0]
    assert "database is locked" in messages[0]
    assert "rows wait in memory, retrying" in messages[0]
    assert stored_ids(f"sqlite://{path}") == [0]
    blocker.execute("COMMIT")
    blocker.close()

    add_until(lambda: len(messages) == 2)
    assert messages[1] == f"dotevals: sqlite://{path} works again; ev goes on"
    wait_for(lambda: stored_ids(f"sqlite://{path}") == list(range(added)))
    summary = run.finish("completed")
    assert summary.rows == added
    assert storage.evaluation_info("exp", "ev").status == "completed"
    storage.close()


class FailingOnce(JSONStorage):
    """The real json backend, whose first write of records raises."""

    def __init__(self, location: str):
        super().__init__(location)
        self.failed = False

    def add_records(self, experiment: str, evaluation: str, records: Sequence[Record]) -> None:
        if not self.failed:
            self.failed = True
            raise OSError(28, "No space left on device")
        super().add_records(experiment, evaluation, records)


def test_one_failed_write_is_retried_in_the_background(tmp_path: Path):
    url = f"json://{tmp_path / 'store'}"
    storage = FailingOnce(str(tmp_path / "store"))
    messages: list[str] = []
    run = ExperimentStore(storage, "exp").start_evaluation("ev", notify=messages.append)
    for n in range(20):
        run.add(record(n))
    wait_for(lambda: storage.failed)
    wait_for(lambda: stored_ids(url) == list(range(20)))
    run.finish("completed")
    assert [r.item_id for r in storage.iter_records("exp", "ev")] == list(range(20))  # once each
    assert messages == []  # a failure that passes at once is not worth a word


class FailingFor(JSONStorage):
    """The real json backend, whose writes of records raise ``error`` while it is set
    (on the main thread; the background thread's get an OSError)."""

    def __init__(self, location: str):
        super().__init__(location)
        self.error: BaseException | None = None

    def add_records(self, experiment: str, evaluation: str, records: Sequence[Record]) -> None:
        if self.error is not None:
            if threading.current_thread() is threading.main_thread():
                raise self.error
            raise OSError(5, "Input/output error")
        super().add_records(experiment, evaluation, records)


def status_of(storage: JSONStorage) -> str:
    info = storage.evaluation_info("exp", "ev")
    assert info is not None
    return info.status


def test_a_metric_that_raises_leaves_the_evaluation_failed_not_running(tmp_path: Path):
    def broken(values: list) -> float:
        raise ZeroDivisionError("the metric divided by zero")

    storage = JSONStorage(str(tmp_path / "store"))
    run = ExperimentStore(storage, "exp").start_evaluation("ev")
    run.add(Record(Result(Score("v", 1, [Metric("broken", broken)])), 0, {"n": 0}))
    summary = run.finish("completed")  # the metric is left out, and says why
    assert summary.metric_errors and "the metric divided by zero" in summary.metric_errors[0]
    info = storage.evaluation_info("exp", "ev")
    assert info is not None
    assert (info.status, info.metadata["rows"], info.ended_at is not None) == ("failed", 1, True)
    assert stored_ids(f"json://{tmp_path / 'store'}") == [0]  # the row is kept


def test_ctrl_c_while_the_last_rows_are_written_leaves_it_interrupted(tmp_path: Path):
    storage = FailingFor(str(tmp_path / "store"))
    run = ExperimentStore(storage, "exp").start_evaluation("ev")
    storage.error = KeyboardInterrupt()
    run.add(record(0))
    with pytest.raises(KeyboardInterrupt):
        run.finish("completed")
    assert status_of(storage) == "interrupted"


def test_storage_that_can_neither_write_nor_read_rows_still_gets_the_status(
    tmp_path: Path, monkeypatch
):
    monkeypatch.setattr(RecordWriter, "WRITE_PATIENCE", 0.0)
    storage = FailingFor(str(tmp_path / "store"))
    run = ExperimentStore(storage, "exp").start_evaluation("ev")
    storage.error = OSError(28, "No space left on device")
    run.add(record(0))
    (tmp_path / "store" / "exp" / "ev.jsonl").write_text("damaged\n{\n")
    with pytest.raises(StorageError, match="1 finished rows of ev could not be stored"):
        run.finish("completed")
    assert status_of(storage) == "failed"


class CountedEvent(threading.Event):
    """A real event that counts how often it is set."""

    def __init__(self) -> None:
        super().__init__()
        self.sets = 0

    def set(self) -> None:
        self.sets += 1
        super().set()


class HeldWrites(JSONStorage):
    """The real json backend, whose writes of records wait until ``gate`` opens."""

    def __init__(self, location: str):
        super().__init__(location)
        self.gate = threading.Event()

    def add_records(self, experiment: str, evaluation: str, records: Sequence[Record]) -> None:
        self.gate.wait(30)
        super().add_records(experiment, evaluation, records)


def test_a_full_batch_wakes_the_writing_thread_once_not_on_every_row_after(tmp_path: Path):
    storage = HeldWrites(str(tmp_path / "store"))
    run = ExperimentStore(storage, "exp").start_evaluation("ev", notify=lambda _: None)
    run._wake = wake = CountedEvent()
    for n in range(3 * RecordWriter.FLUSH_ROWS):
        run.add(record(n))
    assert 1 <= wake.sets <= 3  # once per full batch at most, whatever the thread did
    storage.gate.set()
    assert run.finish("completed").rows == 3 * RecordWriter.FLUSH_ROWS
    assert stored_ids(f"json://{tmp_path / 'store'}") == list(range(3 * RecordWriter.FLUSH_ROWS))
