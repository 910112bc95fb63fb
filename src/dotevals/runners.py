"""The Runner: runs evaluations, stores their rows and collects their summaries.

``Runner`` is the facade both the pytest plugin and scripts use. It takes
evaluation items (pytest items of ``@foreach`` functions, or the functions
themselves), sets up their fixtures, runs sync evaluations one after another
and async ones concurrently (``concurrent=True``), and fills ``results``.

:func:`run` is the one-call entry point for notebooks and scripts.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import pytest

from dotevals.deferred import DeferredSetup
from dotevals.engine.main_executor import Executor
from dotevals.engine.main_executor_choice import make_executor, parse_executor
from dotevals.engine.main_fixture_specs import fixture_specs
from dotevals.engine.main_inline import run_async, run_sync, strategy_for
from dotevals.engine.main_sizing import parse_memory, parse_workers
from dotevals.engine.main_stream import stream
from dotevals.engine.shared_payload import Payload
from dotevals.errors import ConfigurationError, DotevalsError
from dotevals.evaluation import Evaluation, parse_timeout
from dotevals.experiment_store import ExperimentStore, RecordWriter
from dotevals.foreach import get_evaluation
from dotevals.interrupts import sigterm_as_ctrl_c
from dotevals.models import EvaluationSummary, Record
from dotevals.progress import ProgressBar, ProgressFile, progress_wanted
from dotevals.project import evaluation_key
from dotevals.row_errors import ErrorTally
from dotevals.storage import Storage
from dotevals.storage.base import Status

__all__ = ["Runner", "RunReporter", "EvaluationOutcome", "run", "arun"]

EvaluationItem = pytest.Item | Callable[..., Any]

#: What stops the whole run rather than one evaluation: Ctrl-C, SIGTERM, a cancelled loop.
STOPS = (KeyboardInterrupt, asyncio.CancelledError)


@dataclass
class EvaluationOutcome:
    """How one evaluation went: its summary, or the error that stopped it."""

    name: str
    item: pytest.Item | None
    summary: EvaluationSummary | None = None
    new_rows: int = 0
    setup_error: BaseException | None = None
    error: BaseException | None = None
    teardown_error: BaseException | None = None
    duration: float = 0.0
    #: The errors of the rows run this time (``new_rows``).
    row_errors: ErrorTally = field(default_factory=ErrorTally)
    #: The name the evaluation is stored under (``dotevals show --evaluation``).
    stored_name: str | None = None

    @property
    def label(self) -> str:
        """The name reports give the evaluation: the name it is stored under."""
        return self.stored_name or self.name

    @property
    def skipped(self) -> bool:
        """A skip mark (or ``pytest.skip`` in a fixture) stopped it before it ran."""
        return isinstance(self.setup_error, pytest.skip.Exception)

    @property
    def every_row_failed(self) -> bool:
        """Rows ran this time and every one of them errored: the evaluation failed."""
        return self.new_rows > 0 and self.row_errors.count == self.new_rows

    @property
    def interrupted(self) -> bool:
        """Ctrl-C or SIGTERM stopped it while it ran."""
        return isinstance(self.error, STOPS)


@dataclass
class _Job:
    """One evaluation to run: a pytest item, or a function with its fixture values."""

    name: str
    storage_name: str
    evaluation: Evaluation
    item: pytest.Item | None = None
    fixtures: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, obj: EvaluationItem) -> _Job:
        if isinstance(obj, pytest.Item):
            evaluation = get_evaluation(getattr(obj, "obj", None))
            if evaluation is None:
                raise ConfigurationError(f"{obj.nodeid} is not a @foreach evaluation")
            instance = getattr(obj, "instance", None)
            if evaluation.is_method and instance is not None:
                evaluation = evaluation.bound_to(instance)
            return cls(obj.name, evaluation_key(obj), evaluation, item=obj)
        fixtures: dict[str, Any] = {}
        if isinstance(obj, functools.partial):
            if obj.args:
                raise ConfigurationError(
                    "give the fixtures of an evaluation by keyword: "
                    "functools.partial(eval_fn, model=...)"
                )
            fixtures, obj = dict(obj.keywords), obj.func
        evaluation = get_evaluation(obj)
        if evaluation is None:
            raise ConfigurationError(
                f"{obj!r} is not an evaluation: decorate it with @foreach(...) first"
            )
        missing = [n for n in evaluation.fixture_names if n not in fixtures]
        unknown = [n for n in fixtures if n not in evaluation.fixture_names]
        if missing or unknown:
            raise ConfigurationError(
                f"{evaluation.name}: "
                + "; ".join(
                    part
                    for part in (
                        missing and f"missing value for {', '.join(missing)}",
                        unknown and f"{', '.join(unknown)} is neither a column nor a parameter",
                    )
                    if part
                )
            )
        return cls(evaluation.name, evaluation.name, evaluation, fixtures=fixtures)


class RunReporter:
    """What a run tells the world. The pytest plugin reports through pytest instead."""

    #: Where progress bars are drawn (None: stderr).
    progress_file: ProgressFile | None = None

    def message(self, text: str) -> None:
        """A one-line notice, such as the worker count chosen."""
        print(text, file=sys.stderr)

    def progress_started(self) -> None:
        """Progress bars are about to be drawn."""

    def progress_finished(self) -> None:
        """Every progress bar drawn since ``progress_started`` is closed."""

    def report(self, outcome: EvaluationOutcome, when: str) -> None:
        """A phase (``"setup"``, ``"call"``, ``"teardown"``) of an evaluation is over."""

    def capture(self, outcome: EvaluationOutcome, when: str) -> AbstractContextManager[None]:
        """Context in which a phase runs (the plugin captures output there)."""
        return nullcontext()


class Runner:
    """Runs evaluation items and collects their summaries into ``results``.

    Args:
        experiment_name: experiment to store results in (resumed if it exists);
            None makes an ephemeral experiment.
        samples: at most this many new rows per evaluation.
        concurrent: run async evaluations concurrently with each other.
        results_dict: the dict to collect summaries in (it becomes ``results``).
        storage: storage URL or :class:`~dotevals.storage.Storage`
            (default ``json://.dotevals``).
        progress: draw progress bars (only on a terminal).
        reporter: where the run reports progress, phases and notices
            (default: :class:`RunReporter`, notices on stderr).
        workers: worker processes for sync evaluations: a number, ``"auto"``
            (physical cores, capped by memory and rows) or None (main process).
        worker_memory: memory one worker is expected to need, for ``"auto"``
            (bytes or a size such as ``"2GiB"``; default 512 MiB).
        timeout: seconds one row may take, for evaluations whose ``ForEach``
            sets none; a row that runs longer is stored with a timeout error.
        executor: where sync evaluations run with workers: ``"local"`` (a loky
            process pool, the default) or ``"dask://HOST:PORT"`` (a Dask
            cluster, sized by the cluster; needs ``dotevals[dask]``).
    """

    name = "local"

    def __init__(
        self,
        experiment_name: str | None = None,
        samples: int | None = None,
        concurrent: bool = True,
        results_dict: dict[str, EvaluationSummary] | None = None,
        *,
        storage: str | Storage | None = None,
        progress: bool = True,
        reporter: RunReporter | None = None,
        workers: int | str | None = None,
        worker_memory: int | str | None = None,
        timeout: float | None = None,
        executor: str | None = None,
        **engine_options: Any,
    ):
        if engine_options:
            raise ConfigurationError(f"unknown Runner option {', '.join(sorted(engine_options))}")
        if samples is not None and (
            isinstance(samples, bool) or not isinstance(samples, int) or samples < 0
        ):
            raise ConfigurationError(f"samples must be a whole number >= 0, got {samples!r}")
        self.store = ExperimentStore(storage, experiment_name)
        self.samples = samples
        self.concurrent = concurrent
        #: Summaries by evaluation name: ``results_dict`` itself when one is given.
        self.results: dict[str, EvaluationSummary] = {} if results_dict is None else results_dict
        self.outcomes: list[EvaluationOutcome] = []
        self.progress = progress_wanted(progress)
        self.reporter = reporter or RunReporter()
        self.workers = parse_workers(workers)
        self.worker_memory = parse_memory(worker_memory)
        self.timeout = parse_timeout(timeout)
        self.executor = parse_executor(executor)
        self._pool: Executor | None = None
        self._pool_chosen = False
        self._setup: DeferredSetup | None = None
        self._setup_lock = asyncio.Lock()

    @property
    def experiment_name(self) -> str:
        return self.store.experiment_name

    async def run_evaluations(self, evaluation_items: Sequence[EvaluationItem]) -> None:
        """Run every evaluation; errors of one evaluation never stop the others."""
        jobs = [_Job.of(obj) for obj in evaluation_items]
        items = [job.item for job in jobs if job.item is not None]
        if items:
            self._setup = DeferredSetup(items[0].session, asyncio.get_running_loop())
        self.store.lock()
        if not self._pool_chosen:
            self._pool = self._start_pool(jobs)
        groups = self._groups(jobs)
        interrupted = True
        with sigterm_as_ctrl_c():
            try:
                await self._run_groups(groups, items[0].session if items else None)
                interrupted = False
            finally:
                if interrupted and items:  # now, while async fixtures still have their loop
                    await self._teardown_after_stop(self._deferred.teardown_all)
                await asyncio.to_thread(self.close, interrupted)

    async def _run_groups(self, groups: list[list[_Job]], session: pytest.Session | None) -> None:
        for index, group in enumerate(groups):
            if session is not None and (session.shouldfail or session.shouldstop):
                await self._blocking(self._deferred.teardown_all)
                break  # -x / --maxfail: pytest stops the session after this
            following = [job for later in groups[index + 1 :] for job in later]
            nextitem = following[0].item if following else None
            if len(group) == 1:
                await self._run_alone(group[0], nextitem)
            else:
                await self._run_together(group, nextitem)

    async def _teardown_after_stop(self, teardown: Callable[..., None], *args: Any) -> None:
        """Ctrl-C or a crash stopped the run: tear fixtures down, saying so if that fails."""
        try:
            await self._blocking(teardown, *args)
        except Exception as exc:  # the stop itself is what propagates
            self.reporter.message(f"dotevals: tearing fixtures down after the stop failed: {exc!r}")

    def close(self, kill_workers: bool = False) -> None:
        """Stop the worker processes and release the experiment (done by ``run_evaluations``)."""
        self._pool_chosen = False
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.shutdown(kill=kill_workers)
        self.store.unlock()

    def start_workers(self, evaluation_items: Sequence[EvaluationItem]) -> None:
        """Start the worker processes now, so they boot while other work goes on.

        The pytest plugin calls this before the ordinary tests run;
        ``run_evaluations`` does it itself otherwise.
        """
        if not self._pool_chosen:
            self._pool = self._start_pool([_Job.of(obj) for obj in evaluation_items])

    def _start_pool(self, jobs: list[_Job]) -> Executor | None:
        """One pool of workers for every sync evaluation of the run, if one is wanted."""
        self._pool_chosen = True
        sync_jobs = [job for job in jobs if not job.evaluation.is_async]
        if not sync_jobs:
            return None
        totals = [job.evaluation.total for job in sync_jobs]
        rows = None if None in totals else sum(totals)  # type: ignore[arg-type]
        if rows is not None and self.samples is not None:
            rows = min(rows, self.samples * len(sync_jobs))
        return make_executor(
            self.executor, self.workers, rows, self.worker_memory, self.reporter.message
        )

    def _groups(self, jobs: list[_Job]) -> list[list[_Job]]:
        """Consecutive async jobs that may share the event loop go in one group."""
        groups: list[list[_Job]] = []
        for job in jobs:
            last = groups[-1][-1] if groups else None
            if (
                self.concurrent
                and last is not None
                and job.evaluation.is_async
                and last.evaluation.is_async
                and _scope_key(job) == _scope_key(last)
            ):
                groups[-1].append(job)
            else:
                groups.append([job])
        return groups

    async def _run_alone(self, job: _Job, nextitem: pytest.Item | None) -> None:
        outcome = EvaluationOutcome(job.name, job.item)
        fixtures = await self._fixtures(job, outcome)
        if outcome.setup_error is None:
            with self._progress(), self.reporter.capture(outcome, "call"):
                try:
                    await self._execute(job, fixtures, outcome)
                except STOPS:
                    self.outcomes.append(outcome)  # the summary shows what it stored
                    raise
        self._report_run(outcome)
        if job.item is not None:
            try:
                await self._blocking(self._deferred.teardown, job.item, nextitem)
            except STOPS:
                raise
            except BaseException as exc:  # reported on the item
                outcome.teardown_error = exc
        self._finish(outcome)

    async def _run_together(self, jobs: list[_Job], nextitem: pytest.Item | None) -> None:
        """Set each job up and detach it, run them all at once, then report and tear down."""
        started = []
        for job in jobs:
            outcome = EvaluationOutcome(job.name, job.item)
            fixtures = await self._fixtures(job, outcome)
            detached = None
            if job.item is not None:
                detached = await self._blocking(self._deferred.detach, job.item)
            started.append((job, outcome, fixtures, detached))
        with self._progress():
            try:
                await asyncio.gather(
                    *(
                        self._execute(job, fixtures, outcome)
                        for job, outcome, fixtures, _ in started
                        if outcome.setup_error is None
                    )
                )
            except STOPS:
                self.outcomes.extend(o for _, o, _, _ in started if o.setup_error is None)
                for _, _, _, detached in started:
                    if detached is not None:
                        await self._teardown_after_stop(self._deferred.teardown_detached, detached)
                raise
        for _, outcome, _, detached in started:
            self._report_run(outcome)
            if detached is not None:
                with self.reporter.capture(outcome, "teardown"):
                    try:
                        await self._blocking(self._deferred.teardown_detached, detached)
                    except STOPS:
                        raise
                    except BaseException as exc:  # reported on the item
                        outcome.teardown_error = exc
        outcomes = [outcome for _, outcome, _, _ in started]
        items = [job.item for job in jobs if job.item is not None]
        if items:
            try:
                await self._blocking(self._deferred.teardown, items[-1], nextitem)
            except STOPS:
                raise
            except BaseException as exc:  # reported on the last item
                outcomes[-1].teardown_error = exc
        for outcome in outcomes:
            self._finish(outcome)

    def _report_run(self, outcome: EvaluationOutcome) -> None:
        """Report setup and, if it ran, the evaluation itself (once its bar is gone)."""
        self.reporter.report(outcome, "setup")
        if outcome.setup_error is None:
            self.reporter.report(outcome, "call")

    @contextmanager
    def _progress(self) -> Iterator[None]:
        if self.progress:
            self.reporter.progress_started()
        try:
            yield
        finally:
            if self.progress:
                self.reporter.progress_finished()

    @property
    def _deferred(self) -> DeferredSetup:
        assert self._setup is not None
        return self._setup

    async def _blocking(self, func: Callable[..., Any], *args: Any) -> Any:
        """Fixture work runs in a thread, one at a time, so async fixtures can use the loop."""
        async with self._setup_lock:
            return await asyncio.to_thread(func, *args)

    def _in_pool(self, job: _Job) -> bool:
        return self._pool is not None and not job.evaluation.is_async

    async def _fixtures(self, job: _Job, outcome: EvaluationOutcome) -> dict[str, Any] | Payload:
        """The evaluation's fixture values, or for the pool what workers build them from."""
        evaluation = job.evaluation
        try:
            if self._in_pool(job):
                specs, builtins = fixture_specs(job.item) if job.item else ({}, [])
                values = job.fixtures
                if job.item is not None:
                    values = await self._blocking(
                        self._deferred.setup_for_workers, job.item, builtins
                    )
                return Payload(
                    evaluation.func,
                    evaluation.retrying,
                    evaluation.fixture_names,
                    specs,
                    values,
                    tuple(specs),
                    self._timeout(evaluation),
                )
            if job.item is None:
                return job.fixtures
            values = await self._blocking(self._deferred.setup, job.item)
        except STOPS:
            raise
        except BaseException as exc:  # a failed setup fails the item
            outcome.setup_error = exc
            return {}
        return {name: values[name] for name in evaluation.fixture_names}

    async def _execute(
        self, job: _Job, fixtures: dict[str, Any] | Payload, outcome: EvaluationOutcome
    ) -> None:
        evaluation = job.evaluation
        start = time.perf_counter()
        status: Status = "failed"
        run = None
        bar = None
        try:
            run = self.store.start_evaluation(
                job.storage_name,
                _metadata(job),
                self.reporter.message,
                short=job.name if job.item else None,
            )
            outcome.stored_name = run.name
            rows = run.pending(evaluation.rows(), self.samples)
            bar = ProgressBar(
                job.name, self._total(evaluation, run), self.progress, self.reporter.progress_file
            )

            def sink(record: Record) -> None:
                run.add(record)
                bar.update(record)
                outcome.row_errors.add(record)

            if isinstance(fixtures, Payload):
                assert self._pool is not None
                chunk_size = strategy_for(evaluation).batch_size  # type: ignore[union-attr]
                await stream(self._pool, job.name, fixtures, rows, sink, chunk_size)
            elif evaluation.is_async:
                await run_async(evaluation, fixtures, rows, sink, self._timeout(evaluation))
            else:
                run_sync(evaluation, fixtures, rows, sink, self._timeout(evaluation))
            status = "completed"
        except STOPS as exc:
            outcome.error = exc
            status = "interrupted"
            raise
        except Exception as exc:
            outcome.error = exc
        finally:
            if bar is not None:
                bar.close()
            if run is not None:
                self._finish_run(run, status, outcome)
            outcome.duration = time.perf_counter() - start

    def _finish_run(self, run: RecordWriter, status: Status, outcome: EvaluationOutcome) -> None:
        """Store the last rows and the status; storage failing fails this evaluation only."""
        try:
            outcome.summary = run.finish(status)
        except Exception as exc:
            outcome.summary = run.stored_summary()
            if outcome.error is None:
                outcome.error = exc
            else:  # the evaluation's own error is the one reported on its item
                self.reporter.message(f"dotevals: {exc}")
        outcome.new_rows = run.done - run.unstored

    def _timeout(self, evaluation: Evaluation) -> float | None:
        return evaluation.timeout if evaluation.timeout is not None else self.timeout

    def _total(self, evaluation: Evaluation, run: Any) -> int | None:
        total = evaluation.total
        if total is None:
            return self.samples
        remaining = max(0, total - len(run.completed))
        return remaining if self.samples is None else min(remaining, self.samples)

    def _finish(self, outcome: EvaluationOutcome) -> None:
        """The evaluation is over and torn down: collect it and report its teardown."""
        if outcome.summary is not None and outcome.error is None:
            self.results[outcome.name] = outcome.summary
        self.outcomes.append(outcome)
        self.reporter.report(outcome, "teardown")


def _scope_key(job: _Job) -> object:
    """Items that may be set up side by side: same parent, same higher-scoped params."""
    if job.item is None:
        return None
    callspec = getattr(job.item, "callspec", None)
    params: tuple[tuple[str, str], ...] = ()
    if callspec is not None:
        scopes = getattr(callspec, "_arg2scope", {})
        params = tuple(
            sorted(
                (name, repr(value))
                for name, value in callspec.params.items()
                if str(getattr(scopes.get(name), "value", "function")) != "function"
            )
        )
    return (job.item.parent, params)


def _metadata(job: _Job) -> dict[str, Any]:
    evaluation = job.evaluation
    return {
        "function": f"{evaluation.func.__module__}.{evaluation.func.__qualname__}",
        "columns": list(evaluation.columns),
        "dataset": type(evaluation.dataset).__name__,
        **({"nodeid": job.item.nodeid} if job.item is not None else {}),
    }


async def arun(
    evaluation: Callable[..., Any],
    *,
    experiment: str | None = None,
    samples: int | None = None,
    storage: str | Storage | None = None,
    progress: bool = True,
    workers: int | str | None = None,
    executor: str | None = None,
    **fixtures: Any,
) -> EvaluationSummary:
    """Like :func:`run`, for code already inside an event loop (``await dotevals.arun(...)``)."""
    runner = Runner(
        experiment, samples, storage=storage, progress=progress, workers=workers, executor=executor
    )
    await runner.run_evaluations([functools.partial(evaluation, **fixtures)])
    outcome = runner.outcomes[0]
    if outcome.error is not None:
        raise outcome.error
    assert outcome.summary is not None
    return outcome.summary


def run(
    evaluation: Callable[..., Any],
    *,
    experiment: str | None = None,
    samples: int | None = None,
    storage: str | Storage | None = None,
    progress: bool = True,
    workers: int | str | None = None,
    executor: str | None = None,
    **fixtures: Any,
) -> EvaluationSummary:
    """Run one ``@foreach`` evaluation outside pytest and return its summary.

    Keyword arguments other than the options below are the values of the
    evaluation's non-column parameters (what pytest fixtures would provide)::

        summary = dotevals.run(eval_math, experiment="baseline", model=my_model)
        summary.metrics  # {"exact_match": {"accuracy": 0.9}}

    Args:
        experiment: experiment name (resumed if it exists); None is ephemeral.
        samples: at most this many new rows.
        storage: storage URL (default ``json://.dotevals``).
        progress: draw a progress bar on a terminal.
        workers: worker processes for a sync evaluation (a number or ``"auto"``).
        executor: ``"local"`` or ``"dask://HOST:PORT"`` (see :class:`Runner`).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass  # none runs: start one below, outside this handler, so that no error
        # raised by the run is chained to this RuntimeError
    else:
        raise DotevalsError(
            "dotevals.run() cannot be called from a running event loop (for example in "
            "Jupyter); use 'await dotevals.arun(...)' there"
        )
    return asyncio.run(
        arun(
            evaluation,
            experiment=experiment,
            samples=samples,
            storage=storage,
            progress=progress,
            workers=workers,
            executor=executor,
            **fixtures,
        )
    )
