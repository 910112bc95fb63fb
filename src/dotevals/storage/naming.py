"""The names stored evaluations and storages go by in what dotevals prints.

An evaluation run by pytest is stored under ``FILE::NAME`` (see
:func:`dotevals._pytest_bridge.project.evaluation_key`); reports and
``--evaluation`` also know it by its short name. A hint that repeats a command
names the storage only when it is not the one the ``dotevals`` command finds by
itself from the current directory (see :mod:`dotevals.storage.location`).
"""

from __future__ import annotations

from dotevals.storage.location import storage_option

__all__ = ["short_name", "storage_option"]


def short_name(name: str) -> str:
    """The name the pytest summary gives a stored evaluation: its function name and
    parameters, without the file, and without the ``None`` dotevals 0.23 added to the
    name for each column (``eval_math[None-None]`` is ``eval_math``)."""
    short = name.rpartition("::")[2]
    function, bracket, params = short.partition("[")
    if not bracket:
        return short
    kept = [p for p in params.removesuffix("]").split("-") if p != "None"]
    return f"{function}[{'-'.join(kept)}]" if kept else function
