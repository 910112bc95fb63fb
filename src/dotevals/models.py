"""What an evaluation produces: scores, results, stored records and their summary."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from dotevals.intervals import Estimate
from dotevals.metrics import Metric, get_metric

__all__ = ["Score", "Result", "Record", "EvaluationSummary", "Evaluation", "EvaluationStatus"]


@dataclass
class Score:
    """One named value for one row, with the metrics that aggregate it."""

    name: str
    value: Any
    metrics: list[Metric] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "metrics": [m.spec for m in self.metrics],
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Score:
        metrics = [m for m in map(get_metric, data.get("metrics", [])) if m is not None]
        return cls(data["name"], data["value"], metrics, data.get("metadata", {}))


class Result:
    """What an evaluation function returns for one row: its scores and context."""

    def __init__(
        self,
        *scores: Score,
        prompt: str | None = None,
        error: str | None = None,
        model_response: str | None = None,
    ):
        for score in scores:
            if not isinstance(score, Score):
                raise TypeError(f"Result() takes Score objects, got {type(score).__name__}")
        self.scores: list[Score] = list(scores)
        self.prompt = prompt
        self.error = error
        self.model_response = model_response

    def __repr__(self) -> str:
        return (
            f"Result(scores={self.scores!r}, prompt={self.prompt!r}, "
            f"error={self.error!r}, model_response={self.model_response!r})"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Result) and self.to_dict() == other.to_dict()

    def to_dict(self) -> dict[str, Any]:
        return {
            "scores": [s.to_dict() for s in self.scores],
            "prompt": self.prompt,
            "error": self.error,
            "model_response": self.model_response,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        return cls(
            *(Score.from_dict(s) for s in data.get("scores", [])),
            prompt=data.get("prompt"),
            error=data.get("error"),
            model_response=data.get("model_response"),
        )


@dataclass
class Record:
    """One row of one evaluation as stored: its result, position and input.

    A row that raised keeps its ``error`` (``"TypeName: message"``) and, when
    the row's own code was on the stack, its ``traceback`` as text.
    ``stored_text`` is the record's JSON text when it was encoded where the row
    ran (see :func:`dotevals.storage.encoding.encoded`); it is no constructor
    argument, and a copy made with :func:`dataclasses.replace` is encoded afresh.
    """

    result: Result
    item_id: int
    dataset_row: dict[str, Any]
    error: str | None = None
    timestamp: float = field(default_factory=time.time)
    traceback: str | None = None
    stored_text: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def failed(self) -> bool:
        """True when the row errored (it will be run again on resume)."""
        return self.error is not None or self.result.error is not None

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data; ``traceback`` only when there is one."""
        data: dict[str, Any] = {
            "item_id": self.item_id,
            "dataset_row": self.dataset_row,
            "result": self.result.to_dict(),
            "error": self.error,
            "timestamp": self.timestamp,
        }
        if self.traceback is not None:
            data["traceback"] = self.traceback
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        return cls(
            result=Result.from_dict(data["result"]),
            item_id=data["item_id"],
            dataset_row=data["dataset_row"],
            error=data.get("error"),
            timestamp=data.get("timestamp", 0.0),
            traceback=data.get("traceback"),
        )


class EvaluationSummary:
    """The records of one evaluation and their metrics.

    ``metrics`` maps each score name to ``{metric name: value}``, ``estimates``
    to ``{metric name: Estimate}`` (the value with its standard error and 95 %
    interval). A row that errored counts as ``False`` for every score the
    successful rows have.
    """

    def __init__(self, records: Iterable[Record]):
        self._records: list[Record] | None = list(records)
        self._load: Callable[[], list[Record]] | None = None
        self._tally: ScoreTally | None = None

    @classmethod
    def from_tally(
        cls, tally: ScoreTally, load_records: Callable[[], list[Record]]
    ) -> EvaluationSummary:
        """A summary of counted scores; ``records`` are loaded when first read."""
        summary = cls(())
        summary._records = None
        summary._load = load_records
        summary._tally = tally
        return summary

    @property
    def records(self) -> list[Record]:
        """Every row's newest record, in dataset order."""
        if self._records is None:
            assert self._load is not None
            self._records = self._load()
        return self._records

    @property
    def _stats(self) -> ScoreTally:
        if self._tally is None:
            self._tally = ScoreTally(self.records)
        return self._tally

    @property
    def rows(self) -> int:
        """How many rows are stored."""
        return self._stats.rows

    @property
    def errors(self) -> int:
        """How many rows errored."""
        return self._stats.errors

    @property
    def metrics(self) -> dict[str, dict[str, float]]:
        """``{score name: {metric name: value}}``."""
        return self._stats.metric_values()

    @property
    def summary(self) -> dict[str, dict[str, float]]:
        """:attr:`metrics` under its dotevals 0.23 name."""
        warnings.warn(
            "EvaluationSummary.summary is now EvaluationSummary.metrics",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.metrics

    @property
    def estimates(self) -> dict[str, dict[str, Estimate]]:
        return self._stats.estimates()

    def __repr__(self) -> str:
        return f"EvaluationSummary(rows={self.rows}, metrics={self.metrics!r})"


_MISSING: Any = object()
_ABSENT, _OK, _FAILED = 0, 1, 2


class ScoreTally:
    """Score values by row, in flat memory: one list slot per row and score.

    Records may come in any order; a row's newer record replaces its older
    one, as storage returns them and as a resumed run adds them.
    """

    def __init__(self, records: Iterable[Record] = ()):
        self.status = bytearray()
        self.values: dict[str, list[Any]] = {}
        self.metrics: dict[str, list[Metric]] = {}
        for record in records:
            self.add(record)

    def add(self, record: Record) -> None:
        index = record.item_id
        status, values = self.status, self.values
        if index >= len(status):  # room for twice as many rows: rows come one by one
            grow = max(index + 1, 2 * len(status)) - len(status)
            status.extend(bytes(grow))
            for column in values.values():
                column.extend([_MISSING] * grow)
        elif status[index] != _ABSENT:  # a newer record of the row: forget the older one
            for column in values.values():
                column[index] = _MISSING
        status[index] = _FAILED if record.failed else _OK
        for score in record.result.scores:
            scored = values.get(score.name)
            if scored is None:  # a score no earlier row had
                scored = values[score.name] = [_MISSING] * len(status)
                self.metrics[score.name] = score.metrics
            scored[index] = score.value

    @property
    def rows(self) -> int:
        return len(self.status) - self.status.count(_ABSENT)

    def completed(self) -> set[int]:
        """Rows stored without an error."""
        return {index for index, status in enumerate(self.status) if status == _OK}

    def failed(self) -> set[int]:
        """Rows stored with an error."""
        return {index for index, status in enumerate(self.status) if status == _FAILED}

    @property
    def errors(self) -> int:
        return self.status.count(_FAILED)

    def counted(self, name: str) -> dict[int, Any]:
        """The value each stored row counts with for score ``name``, by item id:
        an errored row, or one without that score, counts as False."""
        return {
            index: False if status == _FAILED or value is _MISSING else value
            for index, (status, value) in enumerate(
                zip(self.status, self.values[name], strict=True)
            )
            if status != _ABSENT
        }

    def estimates(self) -> dict[str, dict[str, Estimate]]:
        """Each score's metrics with their standard errors and intervals."""
        result = {}
        for name in self.values:
            values = list(self.counted(name).values())
            result[name] = {m.name: m.estimate(values) for m in self.metrics[name]}
        return result

    def metric_values(self) -> dict[str, dict[str, float]]:
        """``{score name: {metric name: value}}``."""
        return {
            name: {metric: e.value for metric, e in estimates.items()}
            for name, estimates in self.estimates().items()
        }


def as_result(value: Any) -> Result:
    """Wrap a Score in a Result; reject anything that is neither."""
    if isinstance(value, Result):
        return value
    if isinstance(value, Score):
        return Result(value)
    raise TypeError(
        f"an evaluation must return a Score or a Result, got {type(value).__name__}"
        + (f" ({value!r:.80})" if value is not None else "")
    )


def sort_records(records: Iterable[Record]) -> list[Record]:
    """Records in dataset order, keeping the newest record of each row."""
    newest: dict[int, Record] = {}
    for record in records:
        newest[record.item_id] = record
    return [newest[k] for k in sorted(newest)]


class EvaluationStatus(Enum):
    """The status of an evaluation, as storage backends of the dotevals 0.23 interface
    keep it (see :mod:`dotevals.storage.compat`)."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass
class Evaluation:
    """An evaluation's bookkeeping as storage backends of the dotevals 0.23 interface
    keep it (``create_evaluation``, ``load_evaluation``)."""

    evaluation_name: str
    status: EvaluationStatus
    started_at: float
    metadata: dict[str, Any] = field(default_factory=dict)
    completed_at: float | None = None
