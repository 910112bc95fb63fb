"""How many worker processes a run gets, and why.

``auto`` is the number of physical cores, capped by the memory available
(``worker_memory`` bytes per worker, 512 MiB unless told otherwise) and by
the number of rows to run. The reason travels with the number so the run can
say what it chose.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from dotevals.errors import ConfigurationError

__all__ = [
    "DEFAULT_WORKER_MEMORY",
    "WorkerCount",
    "choose_workers",
    "parse_memory",
    "parse_workers",
]

DEFAULT_WORKER_MEMORY = 512 * 2**20
_UNITS = {
    "": 1,
    "b": 1,
    "k": 2**10,
    "kb": 2**10,
    "kib": 2**10,
    "m": 2**20,
    "mb": 2**20,
    "mib": 2**20,
    "g": 2**30,
    "gb": 2**30,
    "gib": 2**30,
}


@dataclass(frozen=True)
class WorkerCount:
    count: int
    reason: str

    def __str__(self) -> str:
        if self.count == 1:
            return f"dotevals: sync evaluations run in the main process ({self.reason})"
        return f"dotevals: {self.count} workers ({self.reason})"


def parse_workers(value: int | str | None) -> int | str | None:
    """``None``, a whole number >= 1 or ``"auto"``; anything else is a clear error."""
    if value is None or value == "auto":
        return value
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or int(text) < 1:
        raise ConfigurationError(
            f"workers must be a whole number >= 1 or 'auto', got {value!r} "
            "(use 1 to run sync evaluations in the main process)"
        )
    return int(text)


def parse_memory(value: int | str | None) -> int:
    """Bytes from ``512MiB``, ``2GB``, ``1.5g`` or a number of bytes."""
    if value is None:
        return DEFAULT_WORKER_MEMORY
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(value))
    if not match or match.group(2).lower() not in _UNITS or float(match.group(1)) <= 0:
        raise ConfigurationError(
            f"worker memory must look like 512MiB, 2GB or a number of bytes, got {value!r}"
        )
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def _gib(size: float) -> str:
    return f"{size / 2**30:.1f} GiB"


def choose_workers(
    requested: int | str | None, rows: int | None = None, worker_memory: int | None = None
) -> WorkerCount:
    """The worker count for ``requested`` (None means 1: no pool)."""
    requested = parse_workers(requested)
    if requested is None:
        return WorkerCount(1, "sync evaluations run in the main process; use --workers to add")
    import psutil  # here: parsing the options, which every run does, needs none of it

    cores = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    if isinstance(requested, int):
        if requested == 1:
            return WorkerCount(1, "1 worker requested")
        if requested > cores:
            return WorkerCount(
                requested,
                f"as requested, more than the {cores} physical core{'s' if cores != 1 else ''}: "
                "they share them, which only helps rows that wait; --workers auto starts "
                "one per core",
            )
        return WorkerCount(requested, "as requested")
    memory = worker_memory or DEFAULT_WORKER_MEMORY
    available = psutil.virtual_memory().available
    count = min(cores, max(1, available // memory))
    reason = f"{cores} physical core{'s' if cores != 1 else ''}, {_gib(available)} free"
    if count < cores:
        reason += f" at {_gib(memory)} per worker"
    if rows is not None and rows < count:
        count = max(1, rows)
        reason += f", {rows} row{'s' if rows != 1 else ''} to run"
    return WorkerCount(count, reason)
