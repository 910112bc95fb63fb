"""``sqlite://PATH``: every experiment in one SQLite database file."""

from __future__ import annotations

import sqlite3
import threading
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dotevals.errors import (
    ExperimentExistsError,
    ExperimentNotFoundError,
    StorageError,
    StorageIOError,
)
from dotevals.models import Record
from dotevals.storage.base import (
    FORMAT,
    EvaluationInfo,
    ExperimentInfo,
    LockOwner,
    Storage,
    check_experiment_name,
)
from dotevals.storage.encoding import decode_json, decode_record, encode_json, stored_text
from dotevals.storage.metadata import evaluation_info, experiment_info

__all__ = ["SQLiteStorage"]

_RECORDS = """
CREATE TABLE IF NOT EXISTS {name} (
    experiment TEXT NOT NULL
        REFERENCES experiments(name) ON UPDATE CASCADE ON DELETE CASCADE,
    evaluation TEXT NOT NULL,
    item_id INTEGER NOT NULL,
    epoch INTEGER NOT NULL DEFAULT 0,
    record TEXT NOT NULL,
    traceback TEXT,
    PRIMARY KEY (experiment, evaluation, item_id, epoch)
);
"""
_SCHEMA = """
CREATE TABLE IF NOT EXISTS experiments (
    name TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    ephemeral INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS evaluations (
    experiment TEXT NOT NULL
        REFERENCES experiments(name) ON UPDATE CASCADE ON DELETE CASCADE,
    name TEXT NOT NULL,
    position INTEGER NOT NULL,
    info TEXT NOT NULL,
    PRIMARY KEY (experiment, name)
);
CREATE TABLE IF NOT EXISTS locks (
    experiment TEXT PRIMARY KEY
        REFERENCES experiments(name) ON UPDATE CASCADE ON DELETE CASCADE,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    since REAL NOT NULL
);
""" + _RECORDS.format(name="records")


def _columns(conn: sqlite3.Connection) -> set[str]:
    return {row[1] for row in conn.execute("PRAGMA table_info(records)")}


def _format(conn: sqlite3.Connection) -> int:
    """The store format of the database (``PRAGMA user_version``; 0 before it was kept)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _upgrade(conn: sqlite3.Connection, path: Path) -> None:
    """Bring a database of an older store format to :data:`FORMAT`, in one transaction:
    its records table is rebuilt keyed by (row, epoch), its old rows epoch 0 (with the
    traceback column a database made before tracebacks were stored lacks). StorageError
    for a database of a newer format."""
    if _format(conn) == FORMAT:
        return
    conn.execute("BEGIN IMMEDIATE")  # another process may be upgrading it too
    try:
        found = _format(conn)
        if found > FORMAT:
            raise StorageError(
                f"{path} is a store of format {found}, written by a newer dotevals (this one "
                f"writes format {FORMAT}): upgrade dotevals to run into it"
            )
        columns = _columns(conn)
        if "epoch" not in columns:
            traceback = "traceback" if "traceback" in columns else "NULL"
            conn.execute(_RECORDS.format(name="records_upgraded"))
            conn.execute(
                "INSERT INTO records_upgraded (experiment, evaluation, item_id, epoch, record, "
                f"traceback) SELECT experiment, evaluation, item_id, 0, record, {traceback} "
                "FROM records"
            )
            conn.execute("DROP TABLE records")
            conn.execute("ALTER TABLE records_upgraded RENAME TO records")
        conn.execute(f"PRAGMA user_version = {FORMAT}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


#: An ``ephemeral`` column's values.
_BOOLEANS = {0: False, 1: True}


def _encode_record(record: Record) -> tuple[str, str | None]:
    """A record as its JSON text and, in a column of its own, its traceback."""
    return stored_text(record, with_traceback=False), record.traceback


class SQLiteStorage(Storage):
    """One database file (``:memory:`` works too), opened on first use.

    A relative path is taken from the working directory when the storage is made
    (a row's ``os.chdir`` moves nothing). With ``read_only`` the file is opened
    to read only (see :meth:`_connect_to_read`).
    """

    scheme = "sqlite"

    def __init__(self, location: str):
        super().__init__(location)
        self.path = Path(location).expanduser()
        if location != ":memory:":
            self.path = self.path.absolute()
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()
        #: The columns of the records table (older databases, read alone, lack some).
        self._columns = {"traceback", "epoch"}

    def exists(self) -> bool:
        return self.location == ":memory:" or self.path.is_file()

    def holds(self, path: Path) -> bool:
        """The database file and the files SQLite keeps beside it (``-wal``, ``-shm``,
        ``-journal``)."""
        if self.location == ":memory:":
            return False
        database = self.path.resolve()
        kept = [database.name + end for end in ("", "-wal", "-shm", "-journal")]
        return path.resolve() in [database.with_name(name) for name in kept]

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """The connection, inside one transaction; sqlite errors become StorageError.

        One thread at a time: records are also written by a background thread.
        """
        try:
            with self._lock:
                if self._conn is None:
                    self._conn = self._connect()
                with self._conn:
                    yield self._conn
        except StorageError:
            raise
        except OSError as exc:
            raise StorageIOError(f"cannot use database {self.path}: {exc.strerror or exc}") from exc
        except sqlite3.Error as exc:
            raise StorageError(f"cannot use database {self.path}: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        if self.read_only and self.location != ":memory:":
            return self._connect_to_read()
        if self.location != ":memory:":
            blocking = next((p for p in self.path.parents if p.exists()), None)
            if blocking is not None and not blocking.is_dir():
                raise StorageIOError(
                    f"cannot use database {self.path}: {blocking} is a file, not a directory"
                )
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            fresh = not conn.execute("SELECT 1 FROM sqlite_master").fetchone()
            conn.executescript(_SCHEMA)
            if fresh:
                conn.execute(f"PRAGMA user_version = {FORMAT}")
            _upgrade(conn, self.path)
        except (sqlite3.Error, StorageError):
            conn.close()
            raise
        return conn

    def _connect_to_read(self) -> sqlite3.Connection:
        """The database opened read-only: no switch to WAL, no table created, so that it
        reads on read-only media too. There the shared-memory file a WAL database needs
        cannot be made, and nothing can change the file: it is opened as immutable."""
        uri = f"{self.path.as_uri()}?mode=ro"
        try:
            return self._open_to_read(uri)
        except sqlite3.OperationalError:  # "unable to open database file"
            return self._open_to_read(f"{uri}&immutable=1")

    def _open_to_read(self, uri: str) -> sqlite3.Connection:
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
        try:
            self._columns = _columns(conn)  # the first read opens the file
        except sqlite3.Error:
            conn.close()
            raise
        return conn

    def _require(self, db: sqlite3.Connection, experiment: str) -> None:
        if not db.execute("SELECT 1 FROM experiments WHERE name = ?", (experiment,)).fetchone():
            raise ExperimentNotFoundError(f"no experiment named {experiment!r} in {self.url}")

    # Experiments -------------------------------------------------------
    def create_experiment(self, name: str, *, ephemeral: bool = False) -> None:
        check_experiment_name(name)  # a blank name: no reader would take it back
        with self._db() as db:
            db.execute(
                "INSERT OR IGNORE INTO experiments (name, created_at, ephemeral) VALUES (?, ?, ?)",
                (name, time.time(), int(ephemeral)),
            )

    def experiment_exists(self, name: str) -> bool:
        with self._db() as db:
            return bool(db.execute("SELECT 1 FROM experiments WHERE name = ?", (name,)).fetchone())

    def experiments(self) -> list[ExperimentInfo]:
        with self._db() as db:
            rows = db.execute(
                "SELECT name, created_at, ephemeral FROM experiments ORDER BY rowid"
            ).fetchall()
        found = []
        for row in rows:
            try:
                found.append(self._experiment(row))
            except StorageError as exc:  # one damaged experiment hides no other
                warnings.warn(f"{exc}; left out of this list", stacklevel=2)
        return sorted(found, key=lambda e: e.created_at)

    def find_experiment(self, name: str) -> ExperimentInfo | None:
        with self._db() as db:
            row = db.execute(
                "SELECT name, created_at, ephemeral FROM experiments WHERE name = ?", (name,)
            ).fetchone()
        return None if row is None else self._experiment(row)

    def _experiment(self, row: tuple[Any, Any, Any]) -> ExperimentInfo:
        """The experiment a row of ``experiments`` holds; StorageError naming it if damaged."""
        name, created, ephemeral = row
        data = {
            "name": name,
            "created_at": created,
            "ephemeral": _BOOLEANS.get(ephemeral, ephemeral),
        }
        try:
            return experiment_info(data)
        except ValueError as exc:
            raise StorageError(
                f"{self.path}: the row of experiment {name!r} in table experiments is not "
                f"valid ({exc}): fix that row"
            ) from None

    def delete_experiment(self, name: str) -> None:
        with self._db() as db:
            self._require(db, name)
            db.execute("DELETE FROM experiments WHERE name = ?", (name,))

    def rename_experiment(self, old: str, new: str) -> None:
        with self._db() as db:
            self._require(db, old)
            if db.execute("SELECT 1 FROM experiments WHERE name = ?", (new,)).fetchone():
                raise ExperimentExistsError(
                    f"cannot rename {old!r}: experiment {new!r} already exists"
                )
            db.execute("UPDATE experiments SET name = ? WHERE name = ?", (new, old))  # cascades

    # Evaluations -------------------------------------------------------
    def list_evaluations(self, experiment: str) -> list[str]:
        with self._db() as db:
            rows = db.execute(
                "SELECT name FROM evaluations WHERE experiment = ? ORDER BY position, rowid",
                (experiment,),
            ).fetchall()
        return [name for (name,) in rows if isinstance(name, str)]

    def save_evaluation(self, experiment: str, info: EvaluationInfo) -> None:
        with self._db() as db:
            self._require(db, experiment)
            db.execute(
                """
                INSERT INTO evaluations (experiment, name, position, info) VALUES (
                    ?1, ?2,
                    (SELECT COALESCE(MAX(position) + 1, 0) FROM evaluations WHERE experiment = ?1),
                    ?3)
                ON CONFLICT (experiment, name) DO UPDATE SET info = excluded.info
                """,
                (experiment, info.name, encode_json(info.to_dict())),
            )

    def evaluation_info(self, experiment: str, evaluation: str) -> EvaluationInfo | None:
        with self._db() as db:
            row = db.execute(
                "SELECT info FROM evaluations WHERE experiment = ? AND name = ?",
                (experiment, evaluation),
            ).fetchone()
        if row is None:
            return None
        try:
            return evaluation_info(decode_json(row[0]), evaluation)
        except (ValueError, TypeError) as exc:  # TypeError: the column holds no text
            raise StorageError(
                f"{self.path}: the info of evaluation {evaluation!r} of experiment "
                f"{experiment!r} in table evaluations is not valid ({exc}): fix that row, "
                "or delete it (the next run of the evaluation writes it again)"
            ) from None

    # Records -----------------------------------------------------------
    def add_records(self, experiment: str, evaluation: str, records: Sequence[Record]) -> None:
        with self._db() as db:
            self._require(db, experiment)
            db.executemany(
                "INSERT OR REPLACE INTO records (experiment, evaluation, item_id, epoch, record, "
                "traceback) VALUES (?, ?, ?, ?, ?, ?)",
                [(experiment, evaluation, r.item_id, r.epoch, *_encode_record(r)) for r in records],
            )

    def _selected(self, column: str, otherwise: str) -> str:
        """``column``, or ``otherwise`` in a database read alone that lacks it."""
        return column if column in self._columns else otherwise

    def iter_records(self, experiment: str, evaluation: str) -> Iterator[Record]:
        with self._db() as db:
            epoch, traceback = self._selected("epoch", "0"), self._selected("traceback", "NULL")
            cursor = db.execute(
                f"SELECT item_id, {epoch} AS epoch, record, {traceback} FROM records "
                "WHERE experiment = ? AND evaluation = ? "
                "ORDER BY item_id, epoch",
                (experiment, evaluation),
            )
            before = 0
            while batch := cursor.fetchmany(1000):
                for item_id, epoch, text, traceback in batch:
                    record = self._decode(experiment, evaluation, (item_id, epoch), text, before)
                    record.traceback = traceback
                    yield record
                    before += 1

    def remove_failed_records(
        self, experiment: str, evaluation: str, item_ids: Iterable[int]
    ) -> None:
        where = "WHERE experiment = ? AND evaluation = ? AND item_id = ?"
        with self._db() as db:
            for item_id in set(item_ids):
                key = (experiment, evaluation, item_id)
                rows = db.execute(f"SELECT epoch, record FROM records {where}", key).fetchall()
                for epoch, text in rows:
                    stored = (item_id, epoch)
                    if self._decode(experiment, evaluation, stored, text, item_id).failed:
                        db.execute(f"DELETE FROM records {where} AND epoch = ?", (*key, epoch))

    def _decode(
        self,
        experiment: str,
        evaluation: str,
        sample: tuple[object, object],
        text: object,
        before: int,
    ) -> Record:
        item_id, epoch = sample
        try:
            if not isinstance(text, (str, bytes)):
                raise ValueError("the record is not text")
            record = decode_record(text, before)
            if record.item_id != item_id or type(item_id) is not int:
                raise ValueError(f"item_id {item_id!r} does not match the record's")
            if record.epoch != epoch:
                raise ValueError(f"epoch {epoch!r} does not match the record's")
        except ValueError as exc:
            raise StorageError(
                f"{self.path}: the record of row {item_id!r} of {evaluation!r} in experiment "
                f"{experiment!r} is not a valid record ({exc}): delete or fix that row to "
                "read this evaluation"
            ) from exc
        return record

    # Locks -------------------------------------------------------------
    def lock_experiment(self, experiment: str, owner: LockOwner) -> LockOwner | None:
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")  # two runs must not both see the lock free
            self._require(db, experiment)
            row = db.execute(
                "SELECT pid, host, since FROM locks WHERE experiment = ?", (experiment,)
            ).fetchone()
            held = LockOwner(*row) if row is not None else None
            if held is not None and not (held.is_stale() or held.is_this_process()):
                return held
            db.execute(
                "INSERT OR REPLACE INTO locks (experiment, pid, host, since) VALUES (?, ?, ?, ?)",
                (experiment, owner.pid, owner.host, owner.since),
            )
        return None

    def unlock_experiment(self, experiment: str, owner: LockOwner) -> None:
        with self._db() as db:
            db.execute(
                "DELETE FROM locks WHERE experiment = ? AND pid = ? AND host = ?",
                (experiment, owner.pid, owner.host),
            )

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
