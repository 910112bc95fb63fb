"""What a result was made with: package versions, the git commit and whether the
tree had changes, and a fingerprint of the dataset rows a run read.

Each evaluation's bookkeeping keeps them (``metadata``), with the run's seed and
the settings its model calls recorded, so that ``dotevals show`` can say how a
result can be made again.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["Fingerprint", "git_commit", "git_dirty", "versions"]

#: The packages whose versions are kept when they are installed: the engine's own,
#: and those that call or run models; with the module each one imports as.
PACKAGES = {
    "dotevals": "dotevals",
    "pytest": "pytest",
    "loky": "loky",
    "cloudpickle": "cloudpickle",
    "genai-prices": "genai_prices",
    "openai": "openai",
    "anthropic": "anthropic",
    "litellm": "litellm",
    "transformers": "transformers",
    "torch": "torch",
    "vllm": "vllm",
    "numpy": "numpy",
}


@functools.cache
def versions() -> dict[str, str]:
    """Python's version and each installed package of :data:`PACKAGES`': the version a
    module imported already states (``__version__``), else its distribution's. A
    package that cannot be imported is not looked for among the distributions (a
    look that takes about a millisecond each)."""
    from importlib.metadata import version
    from importlib.util import find_spec

    found = {"python": platform.python_version()}
    for name, module in PACKAGES.items():
        stated = getattr(sys.modules.get(module), "__version__", None)
        if isinstance(stated, str):
            found[name] = stated
            continue
        try:
            if find_spec(module) is None:
                continue
            found[name] = version(name)
        except (ImportError, ValueError):  # PackageNotFoundError is an ImportError
            continue
    return found


def _in_repository() -> bool:
    """git is only asked inside a repository (a ``.git`` in the working directory or
    above it, or ``GIT_DIR`` set): elsewhere starting it would only take time."""
    cwd = Path.cwd()
    return "GIT_DIR" in os.environ or any(
        (folder / ".git").exists() for folder in (cwd, *cwd.parents)
    )


def _git(*args: str) -> str | None:
    if not _in_repository():
        return None
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout


@functools.cache
def git_commit() -> str | None:
    """The commit checked out in the working directory, if it is a git repository."""
    out = _git("rev-parse", "HEAD")
    return out.strip() or None if out is not None else None


@functools.cache
def git_dirty() -> bool | None:
    """Whether tracked files differ from that commit when it is first asked (None
    outside a repository)."""
    out = _git("status", "--porcelain", "--untracked-files=no")
    return None if out is None else bool(out.strip())


class Fingerprint:
    """A digest of the dataset rows a run reads, in the order it reads them (each row's
    ``repr``: equal values give equal digests), hashed a batch of rows at a time."""

    BATCH = 1000

    def __init__(self) -> None:
        self._hash = hashlib.blake2b(digest_size=16)
        self._waiting: list[str] = []
        self.rows = 0

    def add(self, row: Any) -> None:
        """One row's arguments."""
        self._waiting.append(repr(row))
        if len(self._waiting) == self.BATCH:
            self._digest()

    def _digest(self) -> None:
        """Hash the waiting rows, each text followed by a NUL byte."""
        if self._waiting:
            self.rows += len(self._waiting)
            self._waiting.append("")  # the last row's NUL
            self._hash.update("\0".join(self._waiting).encode("utf-8", "backslashreplace"))
            self._waiting.clear()

    def hexdigest(self) -> str:
        self._digest()
        return self._hash.hexdigest()

    @property
    def read(self) -> int:
        """How many rows were read."""
        return self.rows + len(self._waiting)
