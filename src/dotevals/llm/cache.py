"""The response cache: model answers in a SQLite file, safe across processes.

An entry's key is a SHA-256 of the model's address (base URL), the whole request body
(model name, messages or prompt, tools, every generate setting) and the row's epoch:
two models never share an entry, a changed setting or prompt is a new entry, and
each repeat of a row (epoch) gets its own answer. Only successful responses are
stored: an error is never cached.

The file is SQLite in WAL mode, written in short transactions (one entry each,
``INSERT OR REPLACE``) with a busy timeout, so that several processes can use it at
once: the workers of a run, two runs, a Dask worker on the same machine. A process
killed in the middle of a write leaves the file readable (SQLite's journal undoes the
unfinished transaction). On a network file system SQLite's locks may not hold:
keep the cache on a local disk.

Modes (``--cache``): ``on`` reads and writes, ``off`` neither, ``read-only`` reads
and never writes (nor creates the file), ``refresh`` never reads and writes every
answer anew. A cache that cannot be used (a full disk, a damaged file) is reported
once as a warning and the calls go on without it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dotevals.llm.settings import (
    CACHE_MODES,
    default_cache_path,
    parse_cache_mode,
    parse_expiry,
)

__all__ = [
    "CACHE_MODES",
    "CachedResponse",
    "ResponseCache",
    "cache_key",
    "default_cache_path",
    "parse_cache_mode",
    "parse_expiry",
]

#: How long a write waits for another process's write to end, in seconds.
BUSY_TIMEOUT = 30.0
#: Bumped when the key or the stored form changes: older entries are then misses.
KEY_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    base_url TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    created_at REAL NOT NULL,
    response TEXT NOT NULL,
    usage TEXT
);
CREATE INDEX IF NOT EXISTS responses_created_at ON responses (created_at);
"""


def cache_key(base_url: str, body: dict[str, Any], epoch: int) -> str:
    """The key of one request: its server, its whole body and the row's epoch."""
    text = json.dumps(
        {"v": KEY_VERSION, "base_url": base_url, "body": body, "epoch": epoch},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=repr,
    )
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class CachedResponse:
    """A stored answer: the response as JSON data, its usage block and when it was stored."""

    response: dict[str, Any]
    usage: dict[str, Any] | None
    created_at: float


class ResponseCache:
    """The response cache in the SQLite file ``path`` (see the module docstring).

    One connection per thread and process, opened on first use, so that an instance
    can be shared by threads and sent to worker processes (it pickles as its path,
    mode and expiry).
    """

    def __init__(
        self, path: str | os.PathLike[str], mode: str = "on", expiry: float | str | None = None
    ):
        self.path = Path(path).expanduser().absolute()
        self.mode = parse_cache_mode(mode)
        self.expiry = parse_expiry(expiry)
        self._local = threading.local()
        self._broken: str | None = None

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.path)!r}, mode={self.mode!r})"

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "mode": self.mode, "expiry": self.expiry}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], state["mode"], state["expiry"])  # type: ignore[misc]

    @property
    def reads(self) -> bool:
        return self.mode in ("on", "read-only") and self._broken is None

    @property
    def writes(self) -> bool:
        return self.mode in ("on", "refresh") and self._broken is None

    # connections -------------------------------------------------------------
    def _connection(self, create: bool) -> sqlite3.Connection | None:
        """This thread's connection; None when the file does not exist and ``create``
        is False. With ``create``, the file and its table are made if need be."""
        local = self._local
        conn = local.conn if getattr(local, "pid", None) == os.getpid() else None
        if conn is None:
            if not create and not self.path.exists():
                return None
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                str(self.path), timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
            )
            try:
                conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
                if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
            except BaseException:
                conn.close()
                raise
            local.pid, local.conn, local.schema = os.getpid(), conn, False
        if create and not local.schema:
            conn.executescript(_SCHEMA)
            local.schema = True
        return conn

    def close(self) -> None:
        """Close this thread's connection (others close as their threads end)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            conn.close()
        self._local.conn = None

    def _fail(self, exc: Exception) -> None:
        """The cache cannot be used: say so once, and go on without it."""
        if self._broken is None:
            self._broken = f"{type(exc).__name__}: {exc}"
            warnings.warn(
                f"dotevals: the model response cache {self.path} cannot be used ({self._broken});"
                " calls go on without it",
                RuntimeWarning,
                stacklevel=3,
            )

    # entries -----------------------------------------------------------------
    def get(self, key: str) -> CachedResponse | None:
        """The fresh entry under ``key``, or None (also when the cache does not read)."""
        if not self.reads:
            return None
        try:
            conn = self._connection(create=False)
            if conn is None:
                return None
            found = conn.execute(
                "SELECT response, usage, created_at FROM responses WHERE key = ?", (key,)
            ).fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):  # a file another process is creating
                return None
            self._fail(exc)
            return None
        except sqlite3.Error as exc:
            self._fail(exc)
            return None
        if found is None:
            return None
        response, usage, created_at = found
        if self.expiry is not None and time.time() - created_at > self.expiry:
            return None
        try:
            return CachedResponse(
                json.loads(response), json.loads(usage) if usage else None, created_at
            )
        except ValueError:  # a damaged entry: a miss, replaced by the next answer
            return None

    def put(
        self,
        key: str,
        *,
        model: str,
        base_url: str,
        epoch: int,
        response: dict[str, Any],
        usage: dict[str, Any] | None,
    ) -> None:
        """Store one successful response (nothing when the cache does not write)."""
        if not self.writes:
            return
        try:
            conn = self._connection(create=True)
            assert conn is not None
            conn.execute(
                "INSERT OR REPLACE INTO responses "
                "(key, model, base_url, epoch, created_at, response, usage) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    model,
                    base_url,
                    epoch,
                    time.time(),
                    json.dumps(response, ensure_ascii=False, separators=(",", ":")),
                    None if usage is None else json.dumps(usage, separators=(",", ":")),
                ),
            )
        except (sqlite3.Error, OSError, ValueError) as exc:
            self._fail(exc)

    # the ``dotevals cache`` commands ----------------------------------------
    def stats(self) -> dict[str, Any]:
        """The file, its size and its entries by model (count, oldest, newest, tokens)."""
        files = [self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")]
        size = sum(p.stat().st_size for p in files if p.exists())
        report: dict[str, Any] = {"path": str(self.path), "bytes": size, "entries": 0, "models": []}
        conn = self._connection(create=False)
        if conn is None:
            return report
        rows = conn.execute(
            "SELECT model, base_url, COUNT(*), MIN(created_at), MAX(created_at) FROM responses "
            "GROUP BY model, base_url ORDER BY model, base_url"
        ).fetchall()
        tokens: dict[tuple[str, str], int] = {}
        for model, base_url, usage in conn.execute("SELECT model, base_url, usage FROM responses"):
            total = _total_tokens(usage)
            if total:
                tokens[(model, base_url)] = tokens.get((model, base_url), 0) + total
        for model, base_url, count, oldest, newest in rows:
            report["models"].append(
                {
                    "model": model,
                    "base_url": base_url,
                    "entries": count,
                    "oldest": oldest,
                    "newest": newest,
                    "total_tokens": tokens.get((model, base_url), 0),
                }
            )
            report["entries"] += count
        if self.expiry is not None:
            cutoff = time.time() - self.expiry
            (expired,) = conn.execute(
                "SELECT COUNT(*) FROM responses WHERE created_at < ?", (cutoff,)
            ).fetchone()
            report["expired"] = expired
        return report

    def prune(self, older_than: float) -> int:
        """Delete the entries stored more than ``older_than`` seconds ago; how many."""
        conn = self._connection(create=False)
        if conn is None:
            return 0
        cursor = conn.execute(
            "DELETE FROM responses WHERE created_at < ?", (time.time() - older_than,)
        )
        return cursor.rowcount

    def clear(self, model: str | None = None) -> int:
        """Delete every entry (of ``model`` only, when given); how many."""
        conn = self._connection(create=False)
        if conn is None:
            return 0
        if model is None:
            cursor = conn.execute("DELETE FROM responses")
        else:
            cursor = conn.execute("DELETE FROM responses WHERE model = ?", (model,))
        count = cursor.rowcount
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return count

    def vacuum(self) -> None:
        """Give the space of deleted entries back to the disk."""
        conn = self._connection(create=False)
        if conn is not None:
            conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _total_tokens(usage: str | None) -> int:
    if not usage:
        return 0
    try:
        data = json.loads(usage)
    except ValueError:
        return 0
    total = data.get("total_tokens") if isinstance(data, dict) else None
    if isinstance(total, int):
        return total
    numbers = [
        data.get(k) for k in ("input_tokens", "output_tokens", "prompt_tokens", "completion_tokens")
    ]
    return sum(n for n in numbers if isinstance(n, int))
