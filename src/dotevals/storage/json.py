"""``json://DIR``: one directory per experiment, one JSON-lines file per evaluation.

Layout::

    DIR/<experiment>/experiment.json          name, created_at, ephemeral
    DIR/<experiment>/<evaluation>.info.json   the EvaluationInfo and its position
    DIR/<experiment>/<evaluation>.jsonl       records, appended as they arrive

A name made only of letters, digits and ``. _ - [ ] : @ + , =`` is used as the
file name as it is; any other name becomes a readable form plus a short hash of
the name (``safe_name``). The real names are kept inside the files, and a name
is looked up under every file name it may have been stored under: the hashed
form older versions used for every name, and the names dotevals 0.23 used.

Folders written by dotevals 0.23 (``DIR/<experiment>/<evaluation>.jsonl``, the
first line holding the evaluation's name, status and times) are read in place:
they are listed and shown, and a run resumes them, adding ``experiment.json``,
``*.info.json`` and new records beside and after what is there. An evaluation
created through 0.23's ``create_evaluation`` gets that first line too, so that
0.23, which skips the first line of every file, reads all its records.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from dotevals.errors import (
    ExperimentExistsError,
    ExperimentNotFoundError,
    StorageError,
    StorageIOError,
)
from dotevals.models import Evaluation, Record
from dotevals.storage.base import (
    FORMAT,
    EvaluationInfo,
    ExperimentInfo,
    LockOwner,
    Storage,
    check_experiment_name,
)
from dotevals.storage.encoding import decode_json, decode_record, encode_json, stored_text
from dotevals.storage.links import open_no_link, refuse_links
from dotevals.storage.lockfile import FileLocks
from dotevals.storage.metadata import evaluation_info, experiment_info, info_023, position

__all__ = ["JSONStorage", "safe_name"]

T = TypeVar("T")

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._\-\[\]:@+,=]{0,119}")
#: The names dotevals 0.23 gave runs without --experiment.
_EPHEMERAL_023 = re.compile(r"\d{8}_\d{6}_[0-9a-f]{8}")


def hashed_name(name: str) -> str:
    """A file name for any ``name``: safe characters, then a short hash of the real name."""
    digest = hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{_UNSAFE.sub('_', name)[:80]}-{digest}"


def safe_name(name: str) -> str:
    """The file name a new experiment or evaluation called ``name`` gets: the name
    itself when it is plain, else :func:`hashed_name`."""
    return name if _PLAIN.fullmatch(name) else hashed_name(name)


def _file_names(name: str, name_023: str) -> list[str]:
    """Every file name ``name`` may be stored under, the one for new files first."""
    names = [safe_name(name), hashed_name(name)]
    possible = len(name_023.encode("utf-8", "surrogatepass")) <= 240  # with ".info.json"
    if possible and name_023 not in ("", ".", "..") and not {"/", "\0"} & set(name_023):
        names.append(name_023)
    return list(dict.fromkeys(names))


def _header_023(line: bytes | str) -> dict[str, Any] | None:
    """The first line of an evaluation file written by dotevals 0.23 (a JSON object that is
    no record: it has neither ``item_id`` nor ``result``), else None."""
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if isinstance(data, dict) and not {"item_id", "result"} & set(data):
        return data
    return None


@contextmanager
def _os_errors(action: str, path: Path) -> Iterator[None]:
    """Turn an OSError into a StorageError naming the path and the reason."""
    try:
        yield
    except OSError as exc:
        raise StorageIOError(f"cannot {action} {path}: {exc.strerror or exc}") from exc


class JSONStorage(Storage):
    """Plain files under a directory, created on first write.

    The directory is fixed when the storage is made: a relative path is taken from
    the working directory then, so that a row's ``os.chdir`` moves nothing.
    """

    scheme = "json"

    def __init__(self, location: str):
        super().__init__(location)
        self.root = Path(location).expanduser().absolute()
        self._repaired: set[Path] = set()
        #: Held while a records file is repaired, appended to or rewritten: threads that
        #: add records at once (dotevals 0.23's add_results allows it) append whole
        #: batches, and a repair never takes another thread's batch for a cut line.
        self._writing = threading.Lock()
        self._locks = FileLocks()  # run.lock of each experiment this object runs

    @property
    def root_dir(self) -> Path:
        """The directory experiments are stored in (dotevals 0.23's name for ``root``)."""
        return self.root

    def exists(self) -> bool:
        return self.root.is_dir()

    def holds(self, path: Path) -> bool:
        return path.resolve().is_relative_to(self.root.resolve())

    # Paths and files ---------------------------------------------------
    def _dir(self, experiment: str) -> Path:
        """Where the experiment is stored, or where it will be: its first file name that
        no other experiment holds."""
        places = [self.root / n for n in _file_names(experiment, experiment)]
        for directory in places:
            if (directory / "experiment.json").is_file() and self._name_of(directory) == experiment:
                return directory
        for directory in places:
            if self._name_of(directory) == experiment:
                return directory
        fallback = self.root / hashed_name(experiment)
        return next((d for d in places if self._name_of(d) is None), fallback)

    def _name_of(self, directory: Path) -> str | None:
        """The experiment stored in ``directory``, or None."""
        path = directory / "experiment.json"
        if path.is_file():
            return self._experiment_file(path).name
        return directory.name if directory.is_dir() and self._files_023(directory) else None

    def _files_023(self, directory: Path) -> dict[str, list[tuple[Path, dict[str, Any]]]]:
        """The evaluation files dotevals 0.23 wrote in ``directory``: name -> [(path,
        header)], more than one when files were copied by hand (see :meth:`_file_023`)."""
        found: dict[str, list[tuple[Path, dict[str, Any]]]] = {}
        with _os_errors("list", directory):
            paths = sorted(directory.glob("*.jsonl"))
        for path in paths:
            with _os_errors("read", path), open(path, "rb") as f:
                header = _header_023(f.readline())
            if header is not None:
                name = header.get("evaluation_name")
                key = name if isinstance(name, str) else path.stem
                found.setdefault(key, []).append((path, header))
        return found

    def _file_023(self, directory: Path, evaluation: str) -> tuple[Path, EvaluationInfo] | None:
        """The one file dotevals 0.23 wrote for ``evaluation``, with its first line checked;
        StorageError naming both files when two name it, or the file when it is damaged."""
        files = self._files_023(directory).get(evaluation)
        if not files:
            return None
        if len(files) > 1:
            raise StorageError(
                f"{files[0][0]} and {files[1][0]} both hold the evaluation {evaluation!r} "
                "(files of dotevals 0.23, one copied by hand?): move one of them out of "
                f"{directory} to read or run it"
            )
        path, header = files[0]
        try:
            return path, info_023(header, path.stem)
        except ValueError as exc:
            raise StorageError(
                f"{path}, line 1, is not a valid first line of a dotevals 0.23 file ({exc}): "
                "fix that line to read this evaluation"
            ) from None

    def _read_json(self, path: Path) -> Any:
        with _os_errors("read", path):
            text = path.read_text(encoding="utf-8")
        try:
            return decode_json(text)
        except ValueError as exc:
            raise StorageError(f"{path} is not valid JSON ({exc}): fix or delete it") from exc

    def _checked(self, path: Path, what: str, check: Callable[[Any], T]) -> T:
        """``check`` of the JSON in ``path``, the bookkeeping of an ``what``; StorageError
        naming the file when it is not valid."""
        data = self._read_json(path)
        try:
            return check(data)
        except ValueError as exc:
            raise StorageError(
                f"{path} is not a valid {what} file ({exc}): fix it, or delete it "
                f"(the next run of the {what} writes it again)"
            ) from None

    def _experiment_file(self, path: Path) -> ExperimentInfo:
        return self._checked(path, "experiment", experiment_info)

    def _info_file(self, path: Path) -> tuple[EvaluationInfo, int]:
        """The evaluation a ``*.info.json`` holds and its position."""
        return self._checked(
            path, "evaluation", lambda data: (evaluation_info(data), position(data))
        )

    def _write_json(self, path: Path, data: Any) -> None:
        self._write(path, encode_json(data).encode("utf-8"))

    def _write(self, path: Path, content: bytes) -> None:
        """Write ``content`` to ``path`` atomically (temp file, fsync, replace), with the
        permissions of any new file (the umask applies); never through a link."""
        with _os_errors("write", path):
            path.parent.mkdir(parents=True, exist_ok=True)
            refuse_links(path, self.root)
            tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(content)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise

    def _require(self, experiment: str) -> Path:
        directory = self._dir(experiment)
        if self._name_of(directory) != experiment:
            raise ExperimentNotFoundError(f"no experiment named {experiment!r} in {self.url}")
        return directory

    def _experiment_info(self, directory: Path) -> ExperimentInfo:
        path = directory / "experiment.json"
        if path.is_file():
            return self._experiment_file(path)
        starts = []
        for files in self._files_023(directory).values():
            with contextlib.suppress(ValueError):  # a damaged line tells no time
                starts += [info_023(header, path.stem).started_at for path, header in files]
        numbers = [t for t in starts if t is not None]
        created = min(numbers) if numbers else directory.stat().st_mtime
        ephemeral = bool(_EPHEMERAL_023.fullmatch(directory.name))
        return ExperimentInfo(directory.name, created, ephemeral)

    # Experiments -------------------------------------------------------
    def create_experiment(self, name: str, *, ephemeral: bool = False) -> None:
        """Create the experiment, or bring the one stored to this store format (its
        ``experiment.json`` says the format; records need no change). A blank name
        is refused (ConfigurationError), as no reader would take it back."""
        directory = self._dir(check_experiment_name(name))
        created = time.time()
        if self._name_of(directory) == name:  # stored, maybe by dotevals 0.23
            info = self._experiment_info(directory)
            if info.format == FORMAT:
                return
            if info.format > FORMAT:
                raise StorageError(
                    f"{directory / 'experiment.json'} is a store of format {info.format}, "
                    f"written by a newer dotevals (this one writes format {FORMAT}): upgrade "
                    "dotevals to run into it"
                )
            created, ephemeral = info.created_at, info.ephemeral
        self._write_experiment(directory, name, created, ephemeral)

    def _write_experiment(
        self, directory: Path, name: str, created: float, ephemeral: bool
    ) -> None:
        data = {"name": name, "created_at": created, "ephemeral": ephemeral, "format": FORMAT}
        self._write_json(directory / "experiment.json", data)

    def experiment_exists(self, name: str) -> bool:
        return self._name_of(self._dir(name)) == name

    def find_experiment(self, name: str) -> ExperimentInfo | None:
        directory = self._dir(name)
        return self._experiment_info(directory) if self._name_of(directory) == name else None

    def experiments(self) -> list[ExperimentInfo]:
        if not self.root.is_dir():
            return []
        with _os_errors("list", self.root):
            directories = sorted(p for p in self.root.iterdir() if p.is_dir())
        found: dict[str, ExperimentInfo] = {}
        for directory in directories:
            try:
                name = self._name_of(directory)
                if name is not None and name not in found and self._dir(name) == directory:
                    found[name] = self._experiment_info(directory)
            except StorageError as exc:  # one damaged experiment hides no other
                _skipped(exc)
        return sorted(found.values(), key=lambda e: (e.created_at, e.name))

    def delete_experiment(self, name: str) -> None:
        directory = self._require(name)
        with _os_errors("delete", directory):
            shutil.rmtree(directory)

    def rename_experiment(self, old: str, new: str) -> None:
        source = self._require(old)
        refuse_links(source, self.root)
        if self.experiment_exists(new):
            raise ExperimentExistsError(f"cannot rename {old!r}: experiment {new!r} already exists")
        info = self._experiment_info(source)
        target = self._dir(new)
        with _os_errors("rename to", target):
            source.rename(target)
        self._locks.moved(old, new, target / "run.lock")
        self._write_experiment(target, new, info.created_at, info.ephemeral)

    # Locks -------------------------------------------------------------
    def lock_experiment(self, experiment: str, owner: LockOwner) -> LockOwner | None:
        path = self._require(experiment) / "run.lock"
        refuse_links(path, self.root)
        return self._locks.take(experiment, path, owner, self.url)

    def unlock_experiment(self, experiment: str, owner: LockOwner) -> None:
        self._locks.release(experiment)

    def close(self) -> None:
        self._locks.release_all()

    # Evaluations -------------------------------------------------------
    def _info_files(self, directory: Path) -> list[tuple[EvaluationInfo, int]]:
        """Every evaluation's info and position; a damaged file is left out, with a warning."""
        with _os_errors("list", directory):
            paths = sorted(directory.glob("*.info.json"))
        infos = []
        for path in paths:
            try:
                infos.append(self._info_file(path))
            except StorageError as exc:
                _skipped(exc)
        return infos

    def _stem(self, directory: Path, evaluation: str) -> str:
        """The file name (without suffix) the evaluation is stored under, or will be."""
        stems = _file_names(evaluation, evaluation.replace("/", "@"))
        for stem in stems:
            info = directory / f"{stem}.info.json"
            if info.is_file() and self._info_file(info)[0].name == evaluation:
                return stem
        found_023 = self._file_023(directory, evaluation)
        if found_023 is not None:
            return found_023[0].name.removesuffix(".jsonl")
        taken = {
            path.name.removesuffix(".jsonl")
            for files in self._files_023(directory).values()
            for path, _ in files
        }
        free = (s for s in stems if s not in taken and not (directory / f"{s}.info.json").exists())
        return next(free, hashed_name(evaluation))

    def list_evaluations(self, experiment: str) -> list[str]:
        directory = self._dir(experiment)
        if self._name_of(directory) != experiment:
            return []
        infos = sorted(self._info_files(directory), key=lambda i: (i[1], i[0].name))
        names = [info.name for info, _ in infos]
        only_023 = []
        for name in self._files_023(directory).keys() - set(names):
            try:
                found = self._file_023(directory, name)
            except StorageError as exc:
                _skipped(exc)
                continue
            if found is not None:
                only_023.append((found[1].started_at or 0, name))
        return names + [name for _, name in sorted(only_023)]

    def save_evaluation(self, experiment: str, info: EvaluationInfo) -> None:
        directory = self._require(experiment)
        stem = self._stem(directory, info.name)
        refuse_links(directory / f"{stem}.jsonl", self.root)  # before a run writes records
        path = directory / f"{stem}.info.json"
        if path.is_file():
            position = self._info_file(path)[1]
        else:
            position = max((p + 1 for _, p in self._info_files(directory)), default=0)
        self._write_json(path, {**info.to_dict(), "position": position})

    def evaluation_info(self, experiment: str, evaluation: str) -> EvaluationInfo | None:
        directory = self._dir(experiment)
        if not directory.is_dir():
            return None
        path = directory / f"{self._stem(directory, evaluation)}.info.json"
        if path.is_file():
            return self._info_file(path)[0]
        found_023 = self._file_023(directory, evaluation)
        return None if found_023 is None else found_023[1]

    def create_evaluation(self, experiment: str, evaluation: Evaluation) -> None:
        super().create_evaluation(experiment, evaluation)
        name = self._name_023(experiment, evaluation.evaluation_name)
        path = self._records_path(experiment, name)
        info = self.evaluation_info(experiment, name)
        if info is not None and not path.exists():  # 0.23's first line, 0.23's fields
            header = {
                "evaluation_name": name,
                "metadata": info.metadata,
                "started_at": info.started_at,
                "status": info.status,
                "completed_at": info.ended_at,
            }
            self._write(path, f"{encode_json(header)}\n".encode())

    # Records -----------------------------------------------------------
    def _records_path(self, experiment: str, evaluation: str) -> Path:
        directory = self._dir(experiment)
        return directory / f"{self._stem(directory, evaluation)}.jsonl"

    def add_records(self, experiment: str, evaluation: str, records: Sequence[Record]) -> None:
        self._require(experiment)
        if not records:
            return
        path = self._records_path(experiment, evaluation)
        lines = "\n".join([stored_text(r) for r in records]) + "\n"
        with self._writing, _os_errors("write", path):
            refuse_links(path, self.root)
            if path not in self._repaired:
                _repair_tail(path)
                self._repaired.add(path)
            try:
                fd = open_no_link(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
                with os.fdopen(fd, "a", encoding="utf-8") as f:
                    f.write(lines)
                    f.flush()
                    os.fsync(f.fileno())
            except OSError:
                self._repaired.discard(path)  # the next write first cuts what this one left
                raise

    def iter_records(self, experiment: str, evaluation: str) -> Iterator[Record]:
        for _, record in _numbered(self._records_path(experiment, evaluation)):
            yield record

    def remove_failed_records(
        self, experiment: str, evaluation: str, item_ids: Iterable[int]
    ) -> None:
        rows = set(item_ids)
        path = self._records_path(experiment, evaluation)
        with self._writing:
            removed = {n for n, r in _numbered(path) if r.failed and r.item_id in rows}
            if removed:
                with _os_errors("read", path), open(path, "rb") as f:
                    kept = [line for number, line in enumerate(f, 1) if number not in removed]
                self._write(path, b"".join(kept))
                self._repaired.discard(path)


def _numbered(path: Path) -> Iterator[tuple[int, Record]]:
    """The records of an evaluation file with their line numbers."""
    if not path.is_file():
        return
    with _os_errors("read", path), open(path, "rb") as f:
        previous: tuple[int, bytes] | None = None
        for number, line in enumerate(f, 1):
            if not line.strip() or (number == 1 and _header_023(line) is not None):
                continue
            if previous is not None:
                yield previous[0], _parse_line(path, *previous)
            previous = (number, line)
        if previous is not None:
            try:
                yield previous[0], _parse_line(path, *previous)
            except StorageError:
                return  # the last line was cut short when the process was killed


def _skipped(exc: StorageError) -> None:
    """What a listing says of a damaged experiment or evaluation it leaves out."""
    warnings.warn(f"{exc}; left out of this list", stacklevel=3)


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
    with os.fdopen(open_no_link(path, os.O_RDWR), "rb+") as f:
        end = f.seek(0, os.SEEK_END)
        last = _last_line_start(f, end)
        f.seek(last)
        tail = f.read()
        if not tail.strip():
            return
        try:
            decode_record(tail, before=last)  # each record before it takes a byte or more
        except ValueError:
            if last > 0 or _header_023(tail) is None:
                f.truncate(last)  # partial or damaged: drop it
                return
        if not tail.endswith(b"\n"):
            f.write(b"\n")  # a whole record (or 0.23's first line) missing its newline


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
