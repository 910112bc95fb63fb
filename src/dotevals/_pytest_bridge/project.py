"""Where a pytest project lives, and the name its evaluations are stored under there.

Both are the same wherever pytest is run from, and the same the ``dotevals``
command, ``dotevals.run`` and a Runner find from the current directory
(:mod:`dotevals.storage.location`): the default storage and an ini
``dotevals_storage`` are taken from the project's root, and an evaluation is
stored under its node id with the file's path taken from that root.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dotevals.storage.location import find_project

__all__ = ["evaluation_key", "project_root"]

_ROOT = pytest.StashKey[Path]()


def project_root(config: pytest.Config) -> Path:
    """pytest's rootdir when pytest found a configuration file or ``--rootdir`` fixes
    it; without either, the root :func:`~dotevals.storage.location.find_project` finds
    from the directory pytest was invoked in (a ``setup.py``'s directory, else that
    directory itself), whatever paths the command line gives: ``pytest evals/`` stores
    where ``dotevals show`` from the same directory reads."""
    if _ROOT not in config.stash:
        if config.inipath is not None or config.option.rootdir:
            root = config.rootpath
        else:
            root = find_project(config.invocation_params.dir).root
        config.stash[_ROOT] = root
    return config.stash[_ROOT]


def evaluation_key(item: pytest.Item) -> str:
    """The name an evaluation item is stored under: ``FILE::NAME`` with FILE relative to
    the project root (the node id if the file lies outside it)."""
    try:
        path = item.path.relative_to(project_root(item.config)).as_posix()
    except ValueError:
        return item.nodeid
    _, sep, rest = item.nodeid.partition("::")
    return f"{path}{sep}{rest}"
