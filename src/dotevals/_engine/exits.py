"""A row's ``os._exit`` is stopped: it becomes the row's error, and the process goes on.

``os._exit`` ends a process at once, without an exception or any cleanup. Called
in a row (generated code under test does it), it would end the worker scoring
the row, and with it the rows the pool's other workers were running (a loky
pool breaks whole), or, without workers, the run itself, which would then end
with no summary. While a row is being scored, ``os._exit`` raises
:class:`~dotevals.errors.RowExitError` in the row's code instead, and the row
is stored with it, whatever its code catches.

Only the row's own calls are stopped: one from the process scoring it, on a
thread that runs in the row's context (its task's, in an async row). A process
the row forks, such as a ``multiprocessing`` child, and a thread the row starts
exit as they ask. ``sys.exit`` raises ``SystemExit``, which a row's code may
catch as it likes; one that leaves the row is the row's error (see
:mod:`dotevals._engine.scoring`).
"""

from __future__ import annotations

import os
from typing import NoReturn

from dotevals.errors import RowExitError
from dotevals.llm.row import current_row

__all__ = ["install"]

#: ``os._exit`` as it was before :func:`install`.
_exit = os._exit


def _row_exit(status: int) -> NoReturn:
    """``os._exit``, but inside a row: :class:`RowExitError`, remembered by the row."""
    row = current_row()
    if row is None or row.pid != os.getpid():
        _exit(status)
    error = RowExitError(f"the row called os._exit({status}) (stopped: the run goes on)")
    if row.exited is None:
        row.exited = error
    raise error


def install() -> None:
    """Stop rows' ``os._exit`` in this process (calls outside a row exit as before)."""
    os._exit = _row_exit
