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


@dataclass(init=False)
class Score:
    """One named value for one row, with the metrics that aggregate it.

    ``name`` is a str, ``metrics`` a list of :class:`Metric` objects (a tuple is
    taken as a list) and ``metadata`` a dict; anything else is a TypeError at
    construction, saying what to write instead (``[accuracy()]``, not
    ``accuracy``). ``value`` may be anything storage keeps: JSON's numbers,
    bools, text, None, lists and dicts as they are, NaN and infinities, and
    other objects as the nearest JSON value (see :mod:`dotevals.storage.encoding`).
    """

    name: str
    value: Any
    metrics: list[Metric]
    metadata: dict[str, Any]

    def __init__(
        self,
        name: str,
        value: Any,
        metrics: list[Metric] | tuple[Metric, ...] = (),
        metadata: dict[str, Any] | None = None,
    ):
        if not isinstance(name, str):
            raise TypeError(
                f'Score\'s name must be a str such as "exact_match", got '
                f"{type(name).__name__} {name!r:.40}"
            )
        if not isinstance(metadata, (dict, type(None))):
            raise TypeError(f"Score's metadata must be a dict, got {type(metadata).__name__}")
        self.name = name
        self.value = value
        self.metrics = _metric_list(metrics)
        self.metadata = {} if metadata is None else metadata

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


def _metric_list(metrics: object) -> list[Metric]:
    """``metrics`` when it is a list (or tuple) of Metric objects; else a TypeError
    saying what to write instead."""
    listed = metrics if isinstance(metrics, (list, tuple)) else None
    if listed is not None and all(isinstance(m, Metric) for m in listed):
        return list(listed)
    wrong = metrics if listed is None else next(m for m in listed if not isinstance(m, Metric))
    name = getattr(wrong, "__name__", None)
    problem = "Score's metrics must be a list of Metric objects"
    if isinstance(wrong, Metric):  # one metric, not in a list
        raise TypeError(f"{problem}: write [{wrong.name}()], not {wrong.name}()")
    if callable(wrong) and isinstance(name, str):  # the factory, not the metric it makes
        given = name if listed is None else f"[{name}]"
        raise TypeError(f"{problem}: write [{name}()], not {given} (call the metric's factory)")
    raise TypeError(f"{problem} such as [accuracy()], got {wrong!r:.40}")


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
    ``model_calls`` is what the row's model calls reported (cache hits and misses,
    usage blocks, 429s: see :mod:`dotevals.llm.context`), None when it made none
    through dotevals' provider; it is stored only when there is one, so records
    without it read as before.
    ``stored_text`` is the record's JSON text when it was encoded where the row
    ran (see :func:`dotevals.storage.encoding.encoded`); it is no constructor
    argument, and a copy made with :func:`dataclasses.replace` is encoded afresh.
    """

    result: Result
    item_id: int
    dataset_row: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    timestamp: float = field(default_factory=time.time)
    traceback: str | None = None
    model_calls: dict[str, Any] | None = None
    stored_text: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def failed(self) -> bool:
        """True when the row errored (it will be run again on resume)."""
        return self.error is not None or self.result.error is not None

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data; ``traceback`` and ``model_calls`` only when
        there is one."""
        data: dict[str, Any] = {
            "item_id": self.item_id,
            "dataset_row": self.dataset_row,
            "result": self.result.to_dict(),
            "error": self.error,
            "timestamp": self.timestamp,
        }
        if self.traceback is not None:
            data["traceback"] = self.traceback
        if self.model_calls is not None:
            data["model_calls"] = self.model_calls
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
            model_calls=data.get("model_calls"),
        )


class EvaluationSummary:
    """The records of one evaluation and their metrics.

    ``metrics`` maps each score name to ``{metric name: value}``, ``estimates``
    to ``{metric name: Estimate}`` (the value with its standard error and 95 %
    interval). A row that errored counts as ``False`` for every score the
    successful rows have. A metric that cannot be computed from its values is
    left out, and :attr:`metric_errors` says why. The metrics are computed once,
    when first read.
    """

    def __init__(self, records: Iterable[Record]):
        self._records: list[Record] | None = list(records)
        self._load: Callable[[], list[Record]] | None = None
        self._tally: ScoreTally | None = None
        self._evaluated: tuple[dict[str, dict[str, Estimate]], list[str]] | None = None

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
    def _evaluation(self) -> tuple[dict[str, dict[str, Estimate]], list[str]]:
        if self._evaluated is None:
            self._evaluated = self._stats.evaluate()
        return self._evaluated

    @property
    def metrics(self) -> dict[str, dict[str, float]]:
        """``{score name: {metric name: value}}``."""
        return {s: {m: e.value for m, e in ms.items()} for s, ms in self.estimates.items()}

    @property
    def summary(self) -> dict[str, dict[str, float]]:
        """:attr:`metrics` under its dotevals 0.23 name."""
        return self._metrics_as("summary")

    def compute_summary(self) -> dict[str, dict[str, float]]:
        """:attr:`metrics` under its dotevals 0.23 name."""
        return self._metrics_as("compute_summary()")

    def _metrics_as(self, former: str) -> dict[str, dict[str, float]]:
        warnings.warn(
            f"EvaluationSummary.{former} is now EvaluationSummary.metrics",
            DeprecationWarning,
            stacklevel=3,
        )
        return self.metrics

    @property
    def estimates(self) -> dict[str, dict[str, Estimate]]:
        return {score: dict(metrics) for score, metrics in self._evaluation[0].items()}

    @property
    def metric_errors(self) -> list[str]:
        """Why a metric is missing from :attr:`estimates`: one line per metric that
        could not be computed from its score's values (text under ``mean()``...)."""
        return list(self._evaluation[1])

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

    def evaluate(self) -> tuple[dict[str, dict[str, Estimate]], list[str]]:
        """Each score's metrics with their standard errors and intervals, and one line
        for each metric its values could not give (such a metric is left out)."""
        result: dict[str, dict[str, Estimate]] = {}
        failures = []
        for name in self.values:
            values = list(self.counted(name).values())
            result[name] = {}
            for metric in self.metrics[name]:
                try:
                    result[name][metric.name] = metric.estimate(values)
                except Exception as exc:  # a value the metric cannot take, or its own bug
                    reason = str(exc) or type(exc).__name__
                    failures.append(f"score {name!r}, metric {metric.name}: {reason}")
        return result, failures


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
    """The status of an evaluation in dotevals 0.23's storage interface
    (:class:`~dotevals.storage.Storage`'s ``update_evaluation_status``)."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    #: Ctrl-C or SIGTERM stopped the run (dotevals 0.23 had no such status).
    INTERRUPTED = "interrupted"


@dataclass
class Evaluation:
    """An evaluation's bookkeeping in dotevals 0.23's storage interface
    (``create_evaluation``, ``load_evaluation``)."""

    evaluation_name: str
    status: EvaluationStatus
    started_at: float
    metadata: dict[str, Any] = field(default_factory=dict)
    completed_at: float | None = None
