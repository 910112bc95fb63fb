"""Where a pytest project lives, and the name its evaluations are stored under there.

Both are the same wherever pytest is run from: the default storage and an ini
``dotevals_storage`` are taken from the project's root, and an evaluation is
stored under its node id with the file's path taken from that root.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

__all__ = ["evaluation_key", "project_root"]

_ROOT = pytest.StashKey[Path]()


def project_root(config: pytest.Config) -> Path:
    """pytest's rootdir when a configuration file, ``setup.py`` or ``--rootdir`` fixes it;
    without one, the common directory of the paths on the command line (where pytest
    would take the caller's directory)."""
    if _ROOT not in config.stash:
        root = config.rootpath
        fixed = config.inipath is not None or config.option.rootdir
        if not fixed and not (root / "setup.py").is_file():
            root = _common_directory(config)
        config.stash[_ROOT] = root
    return config.stash[_ROOT]


def _common_directory(config: pytest.Config) -> Path:
    invocation = config.invocation_params.dir
    paths = [invocation / str(arg).split("::")[0] for arg in config.args]
    dirs = [p if p.is_dir() else p.parent for p in paths if p.exists()]
    return Path(os.path.commonpath(dirs)) if dirs else invocation


def evaluation_key(item: pytest.Item) -> str:
    """The name an evaluation item is stored under: ``FILE::NAME`` with FILE relative to
    the project root (the node id if the file lies outside it)."""
    try:
        path = item.path.relative_to(project_root(item.config)).as_posix()
    except ValueError:
        return item.nodeid
    _, sep, rest = item.nodeid.partition("::")
    return f"{path}{sep}{rest}"
