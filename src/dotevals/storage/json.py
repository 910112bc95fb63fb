"""``json://DIR``: one directory per experiment, one JSON-lines file per evaluation.

Layout::

    DIR/<experiment>/experiment.json          name, created_at, ephemeral
    DIR/<experiment>/<evaluation>.info.json   the EvaluationInfo and its position
    DIR/<experiment>/<evaluation>.jsonl       records, appended as they arrive

Names are mapped to safe file names (``safe_name``); the real names are kept
inside the files.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dotevals.errors import ExperimentNotFoundError, StorageError
from dotevals.models import Record
from dotevals.storage.base import EvaluationInfo, ExperimentInfo, LockOwner, Storage
from dotevals.storage.encoding import decode_json, decode_record, encode_json, encode_record
from dotevals.storage.lockfile import FileLocks

__all__ = ["JSONStorage", "safe_name"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def safe_name(name: str) -> str:
    """A file name for ``name``: safe characters, then a short hash of the real name."""
    digest = hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{_UNSAFE.sub('_', name)[:80]}-{digest}"


@contextmanager
def _os_errors(action: str, path: Path) -> Iterator[None]:
    """Turn an OSError into a StorageError naming the path and the reason."""
    try:
        yield
    except OSError as exc:
        raise StorageError(f"cannot {action} {path}: {exc.strerror or exc}") from exc


class JSONStorage(Storage):
    """Plain files under a directory, created on first write."""

    scheme = "json"

    def __init__(self, location: str):
        super().__init__(location)
        self.root = Path(location).expanduser()
        self._repaired: set[Path] = set()
        self._locks = FileLocks()  # run.lock of each experiment this object runs

    def exists(self) -> bool:
        return self.root.is_dir()

    # Paths and files ---------------------------------------------------
    def _dir(self, experiment: str) -> Path:
        return self.root / safe_name(experiment)

    def _read_json(self, path: Path) -> Any:
        with _os_errors("read", path):
            text = path.read_text(encoding="utf-8")
        try:
            return decode_json(text)
        except ValueError as exc:
            raise StorageError(f"{path} is not valid JSON ({exc}): fix or delete it") from exc

    def _write_json(self, path: Path, data: Any) -> None:
        """Write ``data`` to ``path`` atomically (temp file, fsync, replace), with the
        permissions of any new file (the umask applies)."""
        with _os_errors("write", path):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(encode_json(data))
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise

    def _require(self, experiment: str) -> Path:
        directory = self._dir(experiment)
        if not (directory / "experiment.json").is_file():
            raise ExperimentNotFoundError(f"no experiment named {experiment!r} in {self.url}")
        return directory

    # Experiments -------------------------------------------------------
    def create_experiment(self, name: str, *, ephemeral: bool = False) -> None:
        path = self._dir(name) / "experiment.json"
        if not path.is_file():
            data = {"name": name, "created_at": time.time(), "ephemeral": ephemeral}
            self._write_json(path, data)

    def experiment_exists(self, name: str) -> bool:
        return (self._dir(name) / "experiment.json").is_file()

    def list_experiments(self) -> list[ExperimentInfo]:
        if not self.root.is_dir():
            return []
        found = []
        with _os_errors("list", self.root):
            paths = sorted(self.root.glob("*/experiment.json"))
        for path in paths:
            data = self._read_json(path)
            found.append(
                ExperimentInfo(data["name"], data["created_at"], data.get("ephemeral", False))
            )
        return sorted(found, key=lambda e: (e.created_at, e.name))

    def delete_experiment(self, name: str) -> None:
        directory = self._require(name)
        with _os_errors("delete", directory):
            shutil.rmtree(directory)

    def rename_experiment(self, old: str, new: str) -> None:
        source = self._require(old)
        if self.experiment_exists(new):
            raise StorageError(f"cannot rename {old!r}: experiment {new!r} already exists")
        data = self._read_json(source / "experiment.json")
        target = self._dir(new)
        with _os_errors("rename to", target):
            source.rename(target)
        self._write_json(target / "experiment.json", {**data, "name": new})

    # Locks -------------------------------------------------------------
    def lock_experiment(self, experiment: str, owner: LockOwner) -> LockOwner | None:
        return self._locks.take(experiment, self._require(experiment) / "run.lock", owner, self.url)

    def unlock_experiment(self, experiment: str, owner: LockOwner) -> None:
        self._locks.release(experiment)

    def close(self) -> None:
        self._locks.release_all()

    # Evaluations -------------------------------------------------------
    def _info_files(self, experiment: str) -> list[dict[str, Any]]:
        directory = self._require(experiment)
        return [self._read_json(p) for p in sorted(directory.glob("*.info.json"))]

    def list_evaluations(self, experiment: str) -> list[str]:
        infos = self._info_files(experiment)
        return [i["name"] for i in sorted(infos, key=lambda i: (i["position"], i["name"]))]

    def save_evaluation(self, experiment: str, info: EvaluationInfo) -> None:
        path = self._require(experiment) / f"{safe_name(info.name)}.info.json"
        if path.is_file():
            position = self._read_json(path)["position"]
        else:
            position = max((i["position"] + 1 for i in self._info_files(experiment)), default=0)
        self._write_json(path, {**info.to_dict(), "position": position})

    def load_evaluation(self, experiment: str, evaluation: str) -> EvaluationInfo | None:
        path = self._dir(experiment) / f"{safe_name(evaluation)}.info.json"
        return EvaluationInfo.from_dict(self._read_json(path)) if path.is_file() else None

    # Records -----------------------------------------------------------
    def _records_path(self, experiment: str, evaluation: str) -> Path:
        return self._dir(experiment) / f"{safe_name(evaluation)}.jsonl"

    def add_records(self, experiment: str, evaluation: str, records: Sequence[Record]) -> None:
        self._require(experiment)
        if not records:
            return
        path = self._records_path(experiment, evaluation)
        lines = "".join(encode_record(r) + "\n" for r in records)
        with _os_errors("write", path):
            if path not in self._repaired:
                _repair_tail(path)
                self._repaired.add(path)
            try:
                with open(path, "a", encoding="utf-8") as f:
                    f.write(lines)
                    f.flush()
                    os.fsync(f.fileno())
            except OSError:
                self._repaired.discard(path)  # the next write first cuts what this one left
                raise

    def iter_records(self, experiment: str, evaluation: str) -> Iterator[Record]:
        path = self._records_path(experiment, evaluation)
        if not path.is_file():
            return
        with _os_errors("read", path), open(path, "rb") as f:
            previous: tuple[int, bytes] | None = None
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                if previous is not None:
                    yield _parse_line(path, *previous)
                previous = (number, line)
            if previous is not None:
                try:
                    yield _parse_line(path, *previous)
                except StorageError:
                    return  # the last line was cut short when the process was killed


def _parse_line(path: Path, number: int, line: bytes) -> Record:
    try:
        return decode_record(line, before=number - 1)
    except ValueError as exc:
        raise StorageError(
            f"{path}, line {number}, is not a valid record ({exc}): "
            "delete or fix that line to read this evaluation"
        ) from exc


def _repair_tail(path: Path) -> None:
    """Cut an invalid last line (a write interrupted by a crash) before appending, so
    that it is not buried under new records."""
    if not path.is_file():
        return
    with open(path, "rb+") as f:
        end = f.seek(0, os.SEEK_END)
        last = _last_line_start(f, end)
        f.seek(last)
        tail = f.read()
        if not tail.strip():
            return
        try:
            decode_record(tail, before=last)  # each record before it takes a byte or more
        except ValueError:
            f.truncate(last)  # partial or damaged: drop it
        else:
            if not tail.endswith(b"\n"):
                f.write(b"\n")  # a whole record missing only its newline: keep it


def _last_line_start(f: Any, end: int) -> int:
    """Where the last line that is not blank starts (reading backwards from ``end``)."""
    pos, seen_text = end, False
    while pos > 0:
        step = min(1 << 16, pos)
        pos -= step
        f.seek(pos)
        chunk = f.read(step)
        if not seen_text:
            chunk = chunk.rstrip()
            seen_text = bool(chunk)
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            return pos + newline + 1
    return 0
