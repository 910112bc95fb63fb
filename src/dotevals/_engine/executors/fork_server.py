"""Where local workers are forked from under pytest: a fork server.

A pytest session's workers fork from a fork server (Python's ``forkserver``
start method, given to loky) that has imported dotevals' worker side and pytest
once: a worker is ready in milliseconds instead of starting an interpreter and
importing both. The plugin starts the server (:func:`warm`) as soon as the
session's command line asks for local workers, so that it imports them while
pytest starts and collects. When the run's main process ends, the server leaves
without tearing its interpreter down (:mod:`.fork_server_exit`): it shares the
run's output, which a caller reading it to its end would otherwise wait for.
Outside pytest, workers start as loky starts them, a fresh interpreter each,
which does not import the main module (a script need not guard its
``dotevals.run``). So do they when the server cannot start: it listens on a
Unix socket in the temporary directory, a socket's path can have about 100
characters at most, and a long ``TMPDIR`` (one inside a project, as test
runners and CI jobs may set) makes it longer on Python 3.12 and earlier, which
do not shorten it.
"""

from __future__ import annotations

import os
import sys
from typing import Any

__all__ = ["failure", "start_method", "warm"]

#: What the server imports before it forks any worker; the first module makes it leave
#: without tearing its interpreter down once the run's main process has ended.
PRELOAD = [
    "dotevals._engine.executors.fork_server_exit",
    "dotevals._engine.worker.process",
    "pytest",
]


def start_method() -> Any:
    """The multiprocessing context workers start with: the fork server's when the
    main module is pytest's and the server runs, else None (loky's own)."""
    import multiprocessing

    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    pytest_main = getattr(spec, "name", None) == "pytest.__main__" or os.path.basename(
        getattr(main, "__file__", None) or ""
    ) in ("pytest", "py.test")
    if not pytest_main or "forkserver" not in multiprocessing.get_all_start_methods():
        return None
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context if _server_started() else None


def warm() -> None:
    """Start the fork server now, if workers will fork from it, without waiting for it:
    it imports what it preloads while this process goes on."""
    start_method()


#: Why the server could not start in this process (see the module docstring); None
#: while it could.
_failure: str | None = None


def failure() -> str | None:
    """Why workers do not fork from the server in this process, for the run to say;
    None when they do (or no pool was asked for)."""
    return _failure


def _server_started() -> bool:
    """Start the fork server unless it runs (it is not waited for); False if it cannot
    start, and from then on."""
    global _failure
    if _failure is None:
        from multiprocessing import forkserver

        try:
            forkserver.ensure_running()
        except OSError as exc:  # e.g. "AF_UNIX path too long": no socket in this TMPDIR
            _failure = (
                "its socket's path in TMPDIR is too long; a shorter TMPDIR (TMPDIR=/tmp) "
                "lets workers fork in milliseconds"
                if "too long" in str(exc)
                else f"{type(exc).__name__}: {exc}"
            )
    return _failure is None
