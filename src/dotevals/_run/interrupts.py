"""Ctrl-C and SIGTERM while evaluations run: stop at once, keep what finished.

The event loop's own Ctrl-C handler only cancels its main task, which a sync
row running on the loop's thread never sees. While such rows run, Ctrl-C
raises KeyboardInterrupt where the row stands instead. SIGTERM is made to do
what Ctrl-C does, so both end a run the same way: finished rows stored, the
evaluation marked ``interrupted``, fixtures torn down, a non-zero exit.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["ctrl_c_raises", "sigterm_as_ctrl_c"]


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def ctrl_c_raises() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt in the main thread, wherever it stands (unless the
    process ignores Ctrl-C, as a background job does)."""
    if not _on_main_thread() or signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM runs the Ctrl-C handler of the moment, or raises KeyboardInterrupt when
    Ctrl-C is ignored (main thread only; an ignored SIGTERM stays ignored)."""
    if not _on_main_thread() or signal.getsignal(signal.SIGTERM) is signal.SIG_IGN:
        yield
        return

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        handler = signal.getsignal(signal.SIGINT)
        if not callable(handler):
            raise KeyboardInterrupt
        handler(signal.SIGINT, frame)

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
