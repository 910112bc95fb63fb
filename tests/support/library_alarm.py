"""A library that times itself with SIGALRM, as Math-Verify's timeout decorator does, for
rows whose code fights their timeout (the timeout must hold, and leave it working)."""

from __future__ import annotations

import signal
import time
from typing import Any


class LibraryTimeout(Exception):
    pass


def library_timed(seconds: int, work: Any) -> Any:
    """``work()`` under an alarm of ``seconds``, cleared and its handler restored after;
    "library timed out" when the alarm goes off."""

    def handler(signum: int, frame: Any) -> None:
        raise LibraryTimeout

    old = signal.signal(signal.SIGALRM, handler)
    signal.alarm(seconds)
    try:
        return work()
    except LibraryTimeout:
        return "library timed out"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def spin(seconds: float = 60) -> str:
    """Busy-loop (a row's CPU work that would not end by itself in time)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    return "spun"
