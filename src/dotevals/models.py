"""What an evaluation produces: scores, results, stored records and their summary."""

from __future__ import annotations

import math
import time
import warnings
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from dotevals.intervals import Estimate, percentile
from dotevals.llm.usage import Usage, usage_by_model
from dotevals.metrics import Metric, Reducer, TooFewSamples, get_metric

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
    if listed is not None:
        for m in listed:
            if not isinstance(m, Metric):
                break
        else:
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
    """What an evaluation function returns for one row: its scores and context.

    ``usage`` is the row's token usage by model, ``{"gpt-4o": Usage(...)}``
    (:class:`dotevals.llm.Usage`); what the row reported with ``dotevals.llm.track``
    is added to it.
    """

    def __init__(
        self,
        *scores: Score,
        prompt: str | None = None,
        error: str | None = None,
        model_response: str | None = None,
        usage: Mapping[str, Usage] | None = None,
    ):
        for score in scores:
            if not isinstance(score, Score):
                raise TypeError(f"Result() takes Score objects, got {type(score).__name__}")
        self.scores: list[Score] = list(scores)
        self.prompt = prompt
        self.error = error
        self.model_response = model_response
        self.usage: dict[str, Usage] = usage_by_model(usage) if usage else {}

    def __repr__(self) -> str:
        usage = f", usage={self.usage!r}" if self.usage else ""
        return (
            f"Result(scores={self.scores!r}, prompt={self.prompt!r}, "
            f"error={self.error!r}, model_response={self.model_response!r}{usage})"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Result) and self.to_dict() == other.to_dict()

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data; ``usage`` only when there is some."""
        data: dict[str, Any] = {
            "scores": [s.to_dict() for s in self.scores],
            "prompt": self.prompt,
            "error": self.error,
            "model_response": self.model_response,
        }
        if self.usage:
            data["usage"] = {model: u.to_dict() for model, u in self.usage.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        return cls(
            *(Score.from_dict(s) for s in data.get("scores", [])),
            prompt=data.get("prompt"),
            error=data.get("error"),
            model_response=data.get("model_response"),
            usage=data.get("usage"),
        )


@dataclass
class Record:
    """One sample of one evaluation as stored: a row's result in one epoch, its
    position and input.

    A row that raised keeps its ``error`` (``"TypeName: message"``) and, when
    the row's own code was on the stack, its ``traceback`` as text. ``epoch``
    numbers the row's repeats from 0 (a row of an evaluation without repeats has
    one record, epoch 0). ``duration`` is the seconds the row took, retries
    included (None in records stored before it was kept), ``cost`` the USD its
    usage cost by model (models without a price are left out) and ``settings``
    what its model calls recorded (``dotevals.llm.record_settings``).
    ``model_calls`` is what the row's calls to dotevals' model provider reported
    (cache hits and misses, usage blocks, 429s: see :mod:`dotevals.llm.context`),
    None when it made none.
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
    epoch: int = 0
    duration: float | None = None
    cost: dict[str, float] = field(default_factory=dict)
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    model_calls: dict[str, Any] | None = None
    stored_text: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def failed(self) -> bool:
        """True when the row errored (it will be run again on resume)."""
        return self.error is not None or self.result.error is not None

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data; ``traceback``, ``epoch`` (when not 0),
        ``duration``, ``cost``, ``settings`` and ``model_calls`` only when there are
        some."""
        data: dict[str, Any] = {
            "item_id": self.item_id,
            "dataset_row": self.dataset_row,
            "result": self.result.to_dict(),
            "error": self.error,
            "timestamp": self.timestamp,
        }
        if self.traceback is not None:
            data["traceback"] = self.traceback
        if self.epoch:
            data["epoch"] = self.epoch
        if self.duration is not None:
            data["duration"] = self.duration
        if self.cost:
            data["cost"] = self.cost
        if self.settings:
            data["settings"] = self.settings
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
            epoch=data.get("epoch", 0),
            duration=data.get("duration"),
            cost=data.get("cost") or {},
            settings=data.get("settings") or {},
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

    With ``reducers`` (an evaluation with repeats, ``@foreach(..., epochs=k)``),
    each row's values over its epochs are reduced to one value per reducer before
    the metrics run: :attr:`estimates` are those of the first reducer and
    :attr:`reduced` holds every reducer's, by its label.
    """

    def __init__(self, records: Iterable[Record], reducers: Sequence[Reducer] = ()):
        self._records: list[Record] | None = list(records)
        self._load: Callable[[], list[Record]] | None = None
        self._tally: ScoreTally | None = None
        self._evaluated: tuple[dict[str, dict[str, dict[str, Estimate]]], list[str]] | None = None
        self._latency: tuple[float, float] | None | _Unknown = _UNKNOWN
        self.reducers = list(reducers)

    @classmethod
    def from_tally(
        cls,
        tally: ScoreTally,
        load_records: Callable[[], list[Record]],
        reducers: Sequence[Reducer] = (),
    ) -> EvaluationSummary:
        """A summary of counted scores; ``records`` are loaded when first read."""
        summary = cls((), reducers)
        summary._records = None
        summary._load = load_records
        summary._tally = tally
        return summary

    @property
    def records(self) -> list[Record]:
        """Every sample's newest record, in dataset order (a row's epochs in order)."""
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
    def samples(self) -> int:
        """How many (row, epoch) samples are stored: ``rows`` without repeats."""
        return self._stats.samples

    @property
    def epochs(self) -> int:
        """The most epochs a stored row has (1 without repeats, 0 with no row)."""
        return self._stats.epochs

    @property
    def errors(self) -> int:
        """How many samples errored (rows, without repeats)."""
        return self._stats.errors

    @property
    def _evaluation(self) -> tuple[dict[str, dict[str, dict[str, Estimate]]], list[str]]:
        if self._evaluated is None:
            by_reducer: dict[str, dict[str, dict[str, Estimate]]] = {}
            failures: list[str] = []
            chosen: list[Reducer | None] = [*self.reducers] or [None]
            for reducer in chosen:
                estimates, failed = self._stats.evaluate(reducer)
                by_reducer[reducer.label if reducer else ""] = estimates
                failures += failed
            self._evaluated = by_reducer, failures
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
        first = next(iter(self._evaluation[0].values()))
        return {score: dict(metrics) for score, metrics in first.items()}

    @property
    def reduced(self) -> dict[str, dict[str, dict[str, Estimate]]]:
        """``{reducer: {score: {metric: Estimate}}}`` for every reducer, in the order
        given (empty without reducers)."""
        if not self.reducers:
            return {}
        return {r: {s: dict(ms) for s, ms in by.items()} for r, by in self._evaluation[0].items()}

    @property
    def metric_errors(self) -> list[str]:
        """Why a metric is missing from :attr:`estimates`: one line per metric that
        could not be computed from its score's values (text under ``mean()``...)."""
        return list(self._evaluation[1])

    @property
    def usage(self) -> dict[str, Usage]:
        """The tokens the samples used, summed by model."""
        return self._stats.usage_by_model()

    @property
    def cost(self) -> dict[str, float]:
        """What the samples cost in USD, by model (models with a price)."""
        return self._stats.cost_by_model()

    @property
    def total_cost(self) -> float:
        """What the samples cost in USD (models without a price count nothing)."""
        return self._stats.total_cost

    @property
    def unpriced(self) -> list[str]:
        """Models some sample used that had no price when it was scored."""
        return self._stats.unpriced()

    @property
    def latency(self) -> tuple[float, float] | None:
        """The median and 95th percentile of the seconds a sample took (p50, p95); None
        when no record kept its duration."""
        if isinstance(self._latency, _Unknown):
            self._latency = self._stats.latency()
        return self._latency

    @property
    def settings(self) -> dict[str, dict[str, Any]]:
        """The settings the model calls recorded, by model (the newest ones)."""
        return dict(self._stats.settings)

    def __repr__(self) -> str:
        return f"EvaluationSummary(rows={self.rows}, metrics={self.metrics!r})"


class _Unknown:
    """Not computed yet (where None is a value)."""


_UNKNOWN = _Unknown()
_MISSING: Any = object()
_ABSENT, _OK, _FAILED = 0, 1, 2


class _Epoch:
    """One epoch's samples by row, in flat memory: one list slot per row and score."""

    __slots__ = ("status", "values", "durations")

    def __init__(self) -> None:
        self.status = bytearray()
        self.values: dict[str, list[Any]] = {}
        self.durations = array("d")

    def add(self, record: Record, metrics: dict[str, list[Metric]]) -> bool:
        """Keep the record's sample; True when it replaced an older record of it."""
        index = record.item_id
        status, values = self.status, self.values
        replaced = False
        if index >= len(status):  # room for twice as many rows: rows come one by one
            grow = max(index + 1, 2 * len(status)) - len(status)
            status.extend(bytes(grow))
            self.durations.extend(_NO_DURATION * grow)
            for column in values.values():
                column.extend([_MISSING] * grow)
        elif status[index] != _ABSENT:  # a newer record of the row: forget the older one
            replaced = True
            for column in values.values():
                column[index] = _MISSING
        status[index] = _FAILED if record.failed else _OK
        duration = record.duration
        self.durations[index] = math.nan if duration is None else duration
        for score in record.result.scores:
            scored = values.get(score.name)
            if scored is None:  # a score no earlier row had
                scored = values[score.name] = [_MISSING] * len(status)
                metrics.setdefault(score.name, score.metrics)
            scored[index] = score.value
        return replaced

    def counted(self, name: str) -> dict[int, Any]:
        column = self.values.get(name)
        if column is None:  # every row of this epoch errored, or none has the score
            return {i: False for i, status in enumerate(self.status) if status != _ABSENT}
        return {
            index: False if status == _FAILED or value is _MISSING else value
            for index, (status, value) in enumerate(zip(self.status, column, strict=True))
            if status != _ABSENT
        }


_NO_DURATION = array("d", [math.nan])


class _Spent:
    """One model's usage and cost in one epoch, in flat memory: four token counts, a
    cost and a flag per row (samples that report usage can be millions: objects kept
    for each would weigh on memory and on the garbage collector), the token sums and
    the sum of the finite costs. A row's counts and cost are zero unless it is kept
    (:meth:`forget` sets them back)."""

    __slots__ = ("counts", "costs", "flags", "tokens", "finite_cost", "odd_costs")
    USAGE, COST = 1, 2

    def __init__(self) -> None:
        self.counts = array("q")
        self.costs = array("d")
        self.flags = bytearray()
        #: The sums of the samples kept: four token counts and their finite USD.
        self.tokens = [0, 0, 0, 0]
        self.finite_cost = 0.0
        #: Samples kept with a cost that is not finite (inf, NaN).
        self.odd_costs = 0

    def keep(self, index: int, used: Usage | None, usd: float | None) -> None:
        """Keep a sample's usage and cost (one not kept here, or forgotten)."""
        flags = self.flags
        if index >= len(flags):  # room for twice as many rows, as _Epoch does
            grow = max(index + 1, 2 * len(flags)) - len(flags)
            flags.extend(bytes(grow))
            self.counts.extend(_NO_COUNTS * grow)
            self.costs.extend(_NO_COST * grow)
        flag = 0
        if used is not None:
            counts, tokens, at = self.counts, self.tokens, 4 * index
            counts[at] = n = used.input_tokens
            tokens[0] += n
            counts[at + 1] = n = used.output_tokens
            tokens[1] += n
            if used.cached_input_tokens or used.reasoning_tokens:  # often none
                for i, n in enumerate((used.cached_input_tokens, used.reasoning_tokens), 2):
                    counts[at + i] = n
                    tokens[i] += n
            flag = self.USAGE
        if usd is not None:
            self.costs[index] = usd
            if math.isfinite(usd):
                self.finite_cost += usd
            else:
                self.odd_costs += 1
            flag |= self.COST
        flags[index] = flag

    def forget(self, index: int) -> None:
        """Take a sample's usage and cost back (a newer record replaces it)."""
        flag = self.flags[index] if index < len(self.flags) else 0
        if not flag:
            return
        self.flags[index] = 0
        if flag & self.USAGE:
            at = 4 * index
            for i in range(4):
                self.tokens[i] -= self.counts[at + i]
                self.counts[at + i] = 0
        if flag & self.COST:
            usd, self.costs[index] = self.costs[index], 0.0
            if math.isfinite(usd):
                self.finite_cost -= usd
            else:
                self.odd_costs -= 1

    @property
    def cost(self) -> float:
        """USD of the samples kept, costs that are not finite included."""
        if not self.odd_costs:
            return self.finite_cost
        return self.finite_cost + sum(usd for usd in self.costs if not math.isfinite(usd))

    @property
    def priced(self) -> int:
        """Samples kept with a cost."""
        return self.flags.count(self.COST) + self.flags.count(self.USAGE | self.COST)

    @property
    def unpriced(self) -> int:
        """Samples kept with usage and no cost."""
        return self.flags.count(self.USAGE)


_NO_COUNTS = array("q", [0, 0, 0, 0])
_NO_COST = array("d", [0.0])


class ScoreTally:
    """Score values by sample, in flat memory: one list slot per row, score and epoch;
    with what the samples used and cost.

    Records may come in any order; a sample's newer record replaces its older
    one, as storage returns them and as a resumed run adds them.
    """

    def __init__(self, records: Iterable[Record] = ()):
        self._epochs: list[_Epoch] = []
        self.metrics: dict[str, list[Metric]] = {}
        #: Usage and cost of every sample, by epoch and model.
        self._spent: dict[int, dict[str, _Spent]] = {}
        self.settings: dict[str, dict[str, Any]] = {}
        for record in records:
            self.add(record)

    def add(self, record: Record) -> None:
        epoch = record.epoch
        while epoch >= len(self._epochs):
            self._epochs.append(_Epoch())
        replaced = self._epochs[epoch].add(record, self.metrics)
        index = record.item_id
        if replaced and epoch in self._spent:
            for found in self._spent[epoch].values():
                found.forget(index)
        usage, cost = record.result.usage, record.cost
        if usage or cost:  # rows without usage, the usual case, skip this
            spent = self._spent.get(epoch) or self._spent.setdefault(epoch, {})
            for model, used in usage.items():
                found = spent.get(model) or spent.setdefault(model, _Spent())
                found.keep(index, used, cost.get(model))
            for model, usd in cost.items():
                if model not in usage:  # a cost without usage
                    found = spent.get(model) or spent.setdefault(model, _Spent())
                    found.keep(index, None, usd)
        if record.settings:
            self.settings.update(record.settings)

    def _by_model(self) -> Iterator[tuple[str, _Spent]]:
        for spent in self._spent.values():
            yield from spent.items()

    @property
    def tokens(self) -> int:
        """Input and output tokens of every sample stored."""
        return sum(found.tokens[0] + found.tokens[1] for _, found in self._by_model())

    @property
    def total_cost(self) -> float:
        """USD of every sample stored (of finite costs)."""
        return sum(found.finite_cost for _, found in self._by_model())

    @property
    def values(self) -> dict[str, list[Any]]:
        """Epoch 0's values by score (every score any epoch has)."""
        first = self._epochs[0].values if self._epochs else {}
        return {name: first.get(name, []) for name in self.metrics}

    @property
    def epochs(self) -> int:
        return len(self._epochs)

    def _present(self) -> bytearray:
        """One byte per item_id: nonzero where some epoch of the row is stored."""
        if len(self._epochs) == 1:
            return self._epochs[0].status
        width = max((len(e.status) for e in self._epochs), default=0)
        present = bytearray(width)
        for epoch in self._epochs:
            for index, status in enumerate(epoch.status):
                if status != _ABSENT:
                    present[index] = 1
        return present

    @property
    def rows(self) -> int:
        present = self._present()
        return len(present) - present.count(_ABSENT)

    @property
    def samples(self) -> int:
        return sum(len(e.status) - e.status.count(_ABSENT) for e in self._epochs)

    def completed(self, epoch: int = 0) -> set[int]:
        """Rows whose sample of ``epoch`` is stored without an error."""
        if epoch >= len(self._epochs):
            return set()
        return {i for i, status in enumerate(self._epochs[epoch].status) if status == _OK}

    def failed(self, epoch: int = 0) -> set[int]:
        """Rows whose sample of ``epoch`` is stored with an error."""
        if epoch >= len(self._epochs):
            return set()
        return {i for i, status in enumerate(self._epochs[epoch].status) if status == _FAILED}

    @property
    def errors(self) -> int:
        return sum(e.status.count(_FAILED) for e in self._epochs)

    def counted(self, name: str, reducer: Reducer | None = None) -> dict[int, Any]:
        """The value each stored row counts with for score ``name``, by item id: an
        errored sample, or one without that score, counts as False. With a ``reducer``,
        a row's samples over its epochs are reduced to one value (a row with too few
        samples for it is left out)."""
        if reducer is None:
            return self._epochs[0].counted(name) if self._epochs else {}
        by_row: dict[int, list[Any]] = {}
        for epoch in self._epochs:
            for index, value in epoch.counted(name).items():
                by_row.setdefault(index, []).append(value)
        reduced = {}
        for index in sorted(by_row):
            try:
                reduced[index] = reducer(by_row[index])
            except TooFewSamples:
                continue
        return reduced

    def evaluate(
        self, reducer: Reducer | None = None
    ) -> tuple[dict[str, dict[str, Estimate]], list[str]]:
        """Each score's metrics with their standard errors and intervals (over the rows'
        values reduced by ``reducer``, if given), and one line for each metric its values
        could not give (such a metric is left out)."""
        result: dict[str, dict[str, Estimate]] = {}
        failures = []
        how = f", reducer {reducer.label}" if reducer is not None else ""
        for name in self.metrics:
            result[name] = {}
            try:
                values = list(self.counted(name, reducer).values())
            except Exception as exc:  # a value the reducer cannot take, or its own bug
                failures.append(f"score {name!r}{how}: {str(exc) or type(exc).__name__}")
                continue
            for metric in self.metrics[name]:
                try:
                    result[name][metric.label] = metric.estimate(values)
                except Exception as exc:  # a value the metric cannot take, or its own bug
                    reason = str(exc) or type(exc).__name__
                    failures.append(f"score {name!r}{how}, metric {metric.label}: {reason}")
        return result, failures

    def usage_by_model(self) -> dict[str, Usage]:
        """Tokens by model, of the models some sample used or paid for."""
        counts: dict[str, list[int]] = {}
        for model, found in self._by_model():
            total = counts.setdefault(model, [0, 0, 0, 0])
            for i, n in enumerate(found.tokens):
                total[i] += n
        priced = self.cost_by_model()
        return {
            model: Usage(*total) for model, total in counts.items() if any(total) or model in priced
        }

    def cost_by_model(self) -> dict[str, float]:
        """USD by model, of the models some sample has a cost of."""
        cost: dict[str, float] = {}
        for model, found in self._by_model():
            if found.priced:
                cost[model] = cost.get(model, 0.0) + found.cost
        return cost

    def unpriced(self) -> list[str]:
        """The models some sample used without a price."""
        unpriced: dict[str, int] = {}
        for model, found in self._by_model():
            unpriced[model] = unpriced.get(model, 0) + found.unpriced
        return sorted(model for model, samples in unpriced.items() if samples > 0)

    def latency(self) -> tuple[float, float] | None:
        seconds = sorted([d for e in self._epochs for d in e.durations if d == d])  # not NaN
        if not seconds:
            return None
        return percentile(seconds, 0.5), percentile(seconds, 0.95)


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
    """Records in dataset order (a row's epochs in order), keeping the newest record of
    each (row, epoch)."""
    newest: dict[tuple[int, int], Record] = {}
    for record in records:
        newest[record.item_id, record.epoch] = record
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
