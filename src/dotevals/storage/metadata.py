"""The bookkeeping of experiments and evaluations, checked as it is read back.

Records are checked by :func:`~dotevals.storage.encoding.decode_record`; what
says what an experiment and its evaluations are (``experiment.json``,
``*.info.json``, the ``experiments`` and ``evaluations`` tables, the first line
of a dotevals 0.23 file) is checked as strictly: a value of the wrong type is a
ValueError saying which, and the backend names the file or row it came from.
"""

from __future__ import annotations

import reprlib
from datetime import datetime
from typing import Any

from dotevals.storage.base import EvaluationInfo, ExperimentInfo

__all__ = ["evaluation_info", "experiment_info", "info_023", "position"]

STATUSES = ("running", "completed", "failed", "interrupted")
_SCALARS = (str, int, float, bool, type(None))


def experiment_info(data: Any) -> ExperimentInfo:
    """The experiment ``experiment.json`` (or a row of ``experiments``) holds."""
    _check(isinstance(data, dict), "not a JSON object")
    name = data.get("name")
    _check(isinstance(name, str) and name.strip() != "", f"name {_short(name)} is not a name")
    created = data.get("created_at")
    _check(_is_time(created), f"created_at {_short(created)} is not a time")
    ephemeral = data.get("ephemeral", False)
    _check(isinstance(ephemeral, bool), f"ephemeral {_short(ephemeral)} is not true or false")
    version = data.get("format", 1)
    _check(type(version) is int and version >= 1, f"format {_short(version)} is not a format")
    return ExperimentInfo(name, float(created), ephemeral, version)


def evaluation_info(data: Any, name: str | None = None) -> EvaluationInfo:
    """The evaluation a ``*.info.json`` (or the ``info`` of a row of ``evaluations``)
    holds; with ``name``, it must be that evaluation's."""
    _check(isinstance(data, dict), "not a JSON object")
    named = data.get("name")
    _check(isinstance(named, str), f"name {_short(named)} is not text")
    _check(name is None or named == name, f"it names {_short(named)}")
    status = data.get("status", "running")
    _check(status in STATUSES, f"status {_short(status)} is not one of {', '.join(STATUSES)}")
    _time(data, "started_at")
    _time(data, "ended_at")
    _check(isinstance(data.get("metadata", {}), dict), "metadata is not an object")
    _check(_nested(data.get("summary"), 2), "summary is not {score: {metric: value}}")
    _check(
        _nested(data.get("intervals"), 3),
        "intervals is not {score: {metric: {value, stderr, low, high, method}}}",
    )
    _check(
        _nested(data.get("reduced"), 4),
        "reduced is not {reducer: {score: {metric: {value, stderr, low, high, method}}}}",
    )
    return EvaluationInfo.from_dict(data)


def position(data: dict[str, Any]) -> int:
    """Where a ``*.info.json`` puts its evaluation among the experiment's."""
    value = data.get("position")
    _check(type(value) is int, f"position {_short(value)} is not a whole number")
    return int(value)  # type: ignore[arg-type]


def info_023(data: dict[str, Any], file_name: str) -> EvaluationInfo:
    """The evaluation the first line of a file dotevals 0.23 wrote holds (named after
    the file, ``file_name``, when the line names none)."""
    name = data.get("evaluation_name", file_name)
    _check(isinstance(name, str), f"evaluation_name {_short(name)} is not text")
    status = data.get("status", "running")
    _check(status in STATUSES, f"status {_short(status)} is not one of {', '.join(STATUSES)}")
    metadata = data.get("metadata")
    _check(metadata is None or isinstance(metadata, dict), "metadata is not an object")
    return EvaluationInfo(
        name=name,
        status=status,
        started_at=_time(data, "started_at"),
        ended_at=_time(data, "completed_at"),
        metadata=metadata or {},
    )


def _time(data: dict[str, Any], key: str) -> float | None:
    """``data[key]``: a Unix time, or None when it is absent or null."""
    value = data.get(key)
    if value is None:
        return None
    _check(_is_time(value), f"{key} {_short(value)} is not a time")
    return float(value)


def _is_time(value: Any) -> bool:
    """``value`` is a Unix time a date can be made of."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        datetime.fromtimestamp(value)
    except (OverflowError, ValueError, OSError):  # NaN, beyond the years a date has
        return False
    return True


def _nested(value: Any, depth: int) -> bool:
    """``value`` is None, or ``depth`` levels of objects with text keys around JSON
    scalars (what a metric gave)."""
    return value is None or _levels(value, depth)


def _levels(value: Any, depth: int) -> bool:
    if depth == 0:
        return isinstance(value, _SCALARS)
    return isinstance(value, dict) and all(
        isinstance(k, str) and _levels(v, depth - 1) for k, v in value.items()
    )


def _short(value: Any) -> str:
    return reprlib.repr(value)


def _check(condition: bool, reason: str) -> None:
    if not condition:
        raise ValueError(reason)
