"""Preloaded by the fork server, first: when the run's main process ends, the server
leaves at once, without tearing its interpreter down.

The server shares the run's standard output: a caller reading that output to its
end (``subprocess.run(..., capture_output=True)``, ``pytest | tee``) would wait for
the server's teardown too. The server holds nothing to flush or release, and the
workers it forks end with ``os._exit`` as multiprocessing's children do, so they
never run this. Imported anywhere else (not as the server's preload), the module
does nothing.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from types import FrameType

_SERVER = os.getpid()


def _preloaded_by_fork_server() -> bool:
    """Whether this import is the fork server's preload (``multiprocessing.forkserver``'s
    ``main`` importing the modules it was given)."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if (
            frame.f_code.co_name == "main"
            and frame.f_globals.get("__name__") == "multiprocessing.forkserver"
        ):
            return True
        frame = frame.f_back
    return False


def _leave() -> None:
    if os.getpid() == _SERVER:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(AttributeError, OSError, ValueError):  # None or closed
                stream.flush()
        os._exit(0)


if _preloaded_by_fork_server():
    atexit.register(_leave)
