"""Run locks held in a file: created exclusively, holding the owner as JSON."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict
from pathlib import Path

from dotevals.errors import StorageError
from dotevals.storage.base import LockOwner

__all__ = ["lock_file", "unlock_file"]


def lock_file(path: Path, owner: LockOwner) -> LockOwner | None:
    """Take the lock at ``path`` for ``owner``: None when taken, else the live holder.

    A lock whose holder is gone (see :meth:`LockOwner.is_stale`) is taken over.
    """
    text = json.dumps(asdict(owner))
    for _ in range(3):  # a stale lock is removed and taking it is tried again
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            pass
        except OSError as exc:
            raise StorageError(f"cannot lock {path}: {exc.strerror or exc}") from exc
        else:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            return None
        held = _holder(path)
        if held is not None and not held.is_stale():
            return held
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    raise StorageError(f"cannot take the lock {path}; delete it if no run is going on")


def unlock_file(path: Path, owner: LockOwner) -> None:
    """Remove the lock at ``path`` if ``owner`` holds it."""
    held = _holder(path)
    if held is not None and (held.pid, held.host) == (owner.pid, owner.host):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _holder(path: Path) -> LockOwner | None:
    """Who holds a lock file; None if it is gone or unreadable (half written)."""
    try:
        return LockOwner(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
