"""Run locks held in files with ``flock(2)``, for backends that keep no lock of their own.

A lock file is held with ``flock`` for the whole run: the kernel releases it
when the process ends, however it ends, so a lock is stale exactly when nobody
holds it. The file names its holder, for messages.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import asdict
from pathlib import Path

from dotevals.errors import ExperimentInUseError, StorageIOError
from dotevals.storage.base import LockOwner
from dotevals.storage.links import open_no_link

__all__ = ["FileLocks"]


class FileLocks:
    """The lock files one storage object holds, by experiment."""

    #: How long a holder may take to write its name into the file.
    NAME_WAIT = 2.0

    def __init__(self) -> None:
        self._held: dict[str, tuple[int, Path]] = {}

    def take(self, experiment: str, path: Path, owner: LockOwner, where: str) -> LockOwner | None:
        """Lock ``path`` for ``experiment``: None when taken, else the live holder.

        ``where`` names the storage in the message when the holder cannot be told.
        """
        deadline = time.monotonic() + self.NAME_WAIT
        while True:
            fd = _open(path)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                held = _holder(path)
                if held is not None and not held.is_stale():
                    return held
                if time.monotonic() > deadline:
                    raise ExperimentInUseError(
                        f"experiment {experiment!r} in {where} is in use by a process that "
                        f"does not say which in {path}; wait for that run to end, or choose "
                        "another --experiment"
                    ) from None
                time.sleep(0.01)  # the holder is writing its name: read it again
                continue
            except OSError as exc:  # e.g. a file system without locks
                os.close(fd)
                raise StorageIOError(f"cannot lock {path}: {exc.strerror or exc}") from exc
            if _same_file(fd, path):
                break
            os.close(fd)  # locked the file of a run that was just unlocking: try again
        try:
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps(asdict(owner)).encode())
        except OSError as exc:
            os.close(fd)
            raise StorageIOError(f"cannot write {path}: {exc.strerror or exc}") from exc
        self._held[experiment] = (fd, path)
        return None

    def release(self, experiment: str) -> None:
        """Remove and unlock the lock file of ``experiment``, if this object holds it."""
        fd, path = self._held.pop(experiment, (None, None))
        if fd is None or path is None:
            return
        try:
            if _same_file(fd, path):
                path.unlink()  # before unlocking: a waiting run then finds a new file
        finally:
            os.close(fd)

    def moved(self, experiment: str, new: str, path: Path) -> None:
        """The experiment was renamed ``new`` and its lock file moved to ``path``."""
        if experiment in self._held:
            fd, _ = self._held.pop(experiment)
            self._held[new] = (fd, path)

    def release_all(self) -> None:
        for experiment in list(self._held):
            self.release(experiment)


def _open(path: Path) -> int:
    try:
        return open_no_link(path, os.O_RDWR | os.O_CREAT)
    except OSError as exc:
        raise StorageIOError(
            f"cannot take the lock {path}: {exc.strerror or exc}; "
            "delete it if no run of this experiment is going on"
        ) from exc


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _holder(path: Path) -> LockOwner | None:
    """Who holds a lock file; None if it is gone or unreadable (being written)."""
    try:
        return LockOwner(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
