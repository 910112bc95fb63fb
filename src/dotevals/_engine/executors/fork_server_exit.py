"""Imported by the fork server alone (first of what it preloads): when the run's main
process ends, the server leaves at once, without tearing its interpreter down.

The server shares the run's standard output: a caller reading that output to its
end (``subprocess.run(..., capture_output=True)``, ``pytest | tee``) would wait for
the server's teardown too. The server holds nothing to flush or release, and the
workers it forks end with ``os._exit`` as multiprocessing's children do, so they
never run this.
"""

from __future__ import annotations

import atexit
import os
import sys

_SERVER = os.getpid()


def _leave() -> None:
    if os.getpid() == _SERVER:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
        os._exit(0)


atexit.register(_leave)
