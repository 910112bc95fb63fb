"""Writing into a store never follows a symbolic link.

A store is data a user may be handed (a repository, a CI artefact): a link in
it could point a write at any file the user can write, such as a key. Files
are opened with ``O_NOFOLLOW``, and the folders between the store's root and
a file are checked; the root itself may be a link the user made.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from dotevals.errors import StorageError

__all__ = ["open_no_link", "refuse_links"]


def _refused(link: Path) -> StorageError:
    return StorageError(
        f"refusing to write through {link}: it is a symbolic link, and dotevals never "
        "writes into a store through one; replace it with a regular file or folder"
    )


def refuse_links(path: Path, root: Path) -> None:
    """StorageError if ``path`` or a folder between ``root`` and it is a symbolic link."""
    for place in (path, *path.parents):
        if place == root:
            return
        if place.is_symlink():
            raise _refused(place)


def open_no_link(path: Path, flags: int, mode: int = 0o666) -> int:
    """``os.open`` that refuses a symbolic link at ``path`` with a StorageError."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _refused(path) from None
        raise
