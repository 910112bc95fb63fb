"""Choosing where sync evaluations run, the local process pool or a Dask cluster."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from dotevals.errors import ConfigurationError

if TYPE_CHECKING:
    from dotevals._engine.executors.base import Executor

__all__ = ["LOCAL", "make_executor", "parse_executor"]

LOCAL = "local"


def parse_executor(value: str | None) -> str:
    """``local`` (the default) or ``dask://HOST:PORT``."""
    if value is None or value == LOCAL:
        return LOCAL
    text = str(value).strip()
    host, _, port = text.removeprefix("dask://").rpartition(":")
    if not text.startswith("dask://") or not host or not port.isdigit():
        raise ConfigurationError(
            f"executor must be 'local' or 'dask://HOST:PORT' (a Dask scheduler), got {value!r}"
        )
    return text


def make_executor(
    executor: str,
    workers: int | str | None,
    rows: int | None,
    worker_memory: int,
    message: Callable[[str], None],
) -> Executor | None:
    """The executor for a run's sync evaluations; None runs them in the main process.

    On Dask the cluster's size decides; locally ``workers`` does (sized with psutil
    for ``"auto"``), and one worker means no pool at all.
    """
    if executor != LOCAL:
        from dotevals._engine.executors.dask import DaskPool  # only with the dask extra

        pool: Executor = DaskPool(executor)
        message(pool.describe())
        return pool
    if workers is None:
        return None
    from dotevals._engine.executors.local import LocalPool  # loky: only for a pool
    from dotevals._engine.executors.sizing import choose_workers

    choice = choose_workers(workers, rows, worker_memory)
    if choice.count == 1:
        message(str(choice))
        return None
    pool = LocalPool(choice.count, choice.reason)
    message(pool.describe())
    pool.start()
    return pool
