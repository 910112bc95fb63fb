"""The Runner: runs evaluations, stores their rows and collects their summaries.

``Runner`` is the facade both the pytest plugin and scripts use, and it only
orchestrates: its options come from :mod:`dotevals.options`, its jobs and
their grouping from :mod:`dotevals._run.jobs`, the set-up of pytest items from
:mod:`dotevals._pytest_bridge.items`, and rows run in :mod:`dotevals._engine`. It runs sync
evaluations one after another and async ones concurrently
(``concurrent=True``), stores their rows and fills ``results``.

:func:`run` is the one-call entry point for notebooks and scripts.
"""

from __future__ import annotations

import enum
import functools
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from dotevals._declare.error_bound import ErrorBound, exceeded
from dotevals._declare.evaluation import EvaluationSpec
from dotevals._declare.row_errors import ErrorTally
from dotevals._engine.executors.base import Executor
from dotevals._engine.executors.choose import make_executor
from dotevals._engine.inline import Rows, Sink, run_async, run_sync, strategy_for
from dotevals._engine.scoring import Metering
from dotevals._pytest_bridge.items import PytestItems
from dotevals._run import loop_free
from dotevals._run.budget import Budget
from dotevals._run.interrupts import sigterm_as_ctrl_c
from dotevals._run.jobs import Job, Runnable, group_jobs, models_metadata
from dotevals._run.progress import ProgressBar, ProgressFile, progress_wanted
from dotevals.errors import (
    ConfigurationError,
    DotevalsError,
    FixtureError,
    MetricError,
    RowsFailedError,
)
from dotevals.llm.context import CallTally
from dotevals.llm.cost import Prices, user_prices
from dotevals.models import EvaluationSummary, Record
from dotevals.options import RunnerOptions, RunOptions, RunOptionsKeywords, split_keywords
from dotevals.storage.base import Status
from dotevals.storage.writer import ExperimentStore, RecordWriter

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from dotevals._engine.wire import FixtureSpec
    from dotevals._pytest_bridge.deferred import DetachedItem


__all__ = ["Runner", "RunReporter", "EvaluationOutcome", "run", "arun"]

#: How one evaluation's rows run, chosen when its fixtures are set up:
#: in the worker processes, inline in the main process, or on the event loop.
RunRows = Callable[[Rows, Sink], Awaitable[None]]


class _NotStarted(enum.Enum):
    """The type of :data:`_NOT_STARTED`."""

    NOT_STARTED = "not started"


#: A Runner's pool before its run has started (and after it is closed).
_NOT_STARTED = _NotStarted.NOT_STARTED


def stops() -> tuple[type[BaseException], ...]:
    """What stops the whole run rather than one evaluation: Ctrl-C, SIGTERM and, once
    asyncio is imported (a run without an event loop does not import it), a cancelled loop."""
    asyncio = sys.modules.get("asyncio")
    return (KeyboardInterrupt,) if asyncio is None else (KeyboardInterrupt, asyncio.CancelledError)


@dataclass
class EvaluationOutcome:
    """How one evaluation went: its summary, or the error that stopped it."""

    name: str
    item: pytest.Item | None
    summary: EvaluationSummary | None = None
    #: Rows scored and stored for the first time in this run.
    new_rows: int = 0
    #: Rows stored with an error before that ran again in this run (resume runs them),
    #: and how many of them errored again.
    rerun_rows: int = 0
    rerun_errors: int = 0
    setup_error: BaseException | None = None
    error: BaseException | None = None
    teardown_error: BaseException | None = None
    duration: float = 0.0
    #: The errors of the rows run this time (``new_rows`` and ``rerun_rows``).
    row_errors: ErrorTally = field(default_factory=ErrorTally)
    #: The name the evaluation is stored under (``dotevals show --evaluation``).
    stored_name: str | None = None
    #: The bound its stored rows' errors were judged by: its ``@foreach`` one, else the
    #: run's ``fail_on_error``; None: it fails when every stored row errored.
    fail_on_error: ErrorBound | None = None
    #: The model calls of the rows run this time: cache hits and misses, 429s.
    model_calls: CallTally = field(default_factory=CallTally)
    #: Why the run's budget (``--max-cost``, ``--max-tokens``) stopped it with rows left
    #: (None: it did not). Such an evaluation is not failed: its item is skipped.
    budget: str | None = None

    @property
    def label(self) -> str:
        """The name reports give the evaluation: the name it is stored under."""
        return self.stored_name or self.name

    @property
    def skipped(self) -> bool:
        """A skip mark (or ``pytest.skip`` in a fixture) stopped it before it ran."""
        return isinstance(self.setup_error, pytest.skip.Exception)

    @property
    def ran_rows(self) -> int:
        """Rows run and stored in this run: new ones and errored ones run again."""
        return self.new_rows + self.rerun_rows

    @property
    def every_row_failed(self) -> bool:
        """Samples are stored and every one of them errored."""
        summary = self.summary
        return summary is not None and summary.samples > 0 and summary.errors == summary.samples

    @property
    def rows_failed(self) -> bool:
        """Its stored rows errored beyond ``fail_on_error`` (by default: every one of
        them did), so the evaluation failed. The verdict depends on the rows stored,
        not on which of them ran this time: an unchanged experiment run again gets the
        same verdict. False when an error stopped the evaluation (that error fails it)."""
        summary = self.summary
        if summary is None or self.error is not None or self.setup_error is not None:
            return False
        return exceeded(self.fail_on_error, summary.errors, summary.samples)

    @property
    def interrupted(self) -> bool:
        """Ctrl-C or SIGTERM stopped it while it ran."""
        return isinstance(self.error, stops())


@dataclass
class _Started:
    """An evaluation set up to run together with others (its item detached)."""

    job: Job
    outcome: EvaluationOutcome
    run_rows: RunRows | None
    detached: DetachedItem | None


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

    The run options are the keyword arguments (see :mod:`dotevals.options` for
    each one: ``storage``, ``workers``, ``worker_memory``, ``timeout``,
    ``executor``, ``progress`` ...); ``experiment_name``, ``samples`` and
    ``concurrent`` may also be given by position.

    A run takes three steps: :meth:`start_workers` (the experiment is locked and
    the pool of worker processes the run's sync evaluations use is started, so
    that it boots meanwhile), the evaluations, then :meth:`close` (workers
    stopped, experiment released). :meth:`run` and :meth:`run_evaluations` take
    all three; the pytest plugin starts the workers itself, before the ordinary
    tests run. A closed Runner may run again.

    Args:
        experiment_name: experiment to store results in (resumed if it exists);
            None makes an ephemeral experiment (the ``experiment`` option).
        samples: at most this many new rows per evaluation.
        concurrent: run async evaluations concurrently with each other.
        results_dict: the dict to collect summaries in (it becomes ``results``).
        reporter: where the run reports progress, phases and notices
            (default: :class:`RunReporter`, notices on stderr).
    """

    def __init__(
        self,
        experiment_name: str | None = None,
        samples: int | None = None,
        concurrent: bool = True,
        results_dict: dict[str, EvaluationSummary] | None = None,
        *,
        reporter: RunReporter | None = None,
        **options: Unpack[RunnerOptions],
    ):
        given: dict[str, Any] = dict(options)
        if experiment_name is not None:
            if given.get("experiment") not in (None, experiment_name):
                raise ConfigurationError("give the Runner experiment_name or experiment, not both")
            given["experiment"] = experiment_name
        self.options = RunOptions.from_keywords(
            "Runner", samples=samples, concurrent=concurrent, **given
        )
        self.store = ExperimentStore(self.options.storage, self.options.experiment)
        #: Summaries by evaluation name: ``results_dict`` itself when one is given.
        self.results: dict[str, EvaluationSummary] = {} if results_dict is None else results_dict
        self.outcomes: list[EvaluationOutcome] = []
        self.progress = progress_wanted(self.options.progress)
        self.reporter = reporter or RunReporter()
        #: The run's pool of workers once the run has started (None: rows run here).
        self._pool: Executor | None | _NotStarted = _NOT_STARTED
        self._items: PytestItems | None = None
        self._started = False
        #: What the run may spend (``max_cost``, ``max_tokens``), from its start.
        self.budget = Budget(self.options.max_cost, self.options.max_tokens)

    @property
    def experiment_name(self) -> str | None:
        """The experiment's name; for an ephemeral experiment (no name given), None until
        a run starts, then the name made for it (``runner.store.experiment_name``)."""
        if self.store.ephemeral and not self._started:
            return None
        return self.store.experiment_name

    @property
    def samples(self) -> int | None:
        return self.options.samples

    @property
    def concurrent(self) -> bool:
        """Whether async evaluations run concurrently with each other."""
        return self.options.concurrent

    @property
    def progress_manager(self) -> RunReporter:
        """What shows the run's progress, under its dotevals 0.23 name: the reporter."""
        return self.reporter

    # The run's steps -----------------------------------------------------
    def start_workers(self, evaluation_items: Sequence[Runnable]) -> None:
        """Lock the experiment and start the run's worker processes, if it has any.

        The first step of a run; later calls before :meth:`close` do nothing.
        ExperimentInUseError if another run holds the experiment.
        """
        self._start([Job.of(obj) for obj in evaluation_items])

    def run(self, evaluation_items: Sequence[Runnable]) -> None:
        """Run every evaluation from synchronous code, with an event loop only if needed.

        Async evaluations, async fixtures and worker processes need an event
        loop, and get one (``asyncio.run``). Without any of them the rows and
        fixtures run with no event loop, as in plain pytest: a row may call
        ``asyncio.run`` itself.
        """
        jobs = [Job.of(obj) for obj in evaluation_items]
        pool = self._start(jobs)
        if pool is not None or any(job.needs_event_loop for job in jobs):
            import asyncio

            asyncio.run(self._run_jobs(jobs))
        else:
            loop_free.run(self._run_jobs(jobs))

    async def run_evaluations(self, evaluation_items: Sequence[Runnable]) -> None:
        """Run every evaluation; errors of one evaluation never stop the others."""
        await self._run_jobs([Job.of(obj) for obj in evaluation_items])

    def close(self, kill_workers: bool = False) -> None:
        """The last step of a run: stop the worker processes and release the experiment."""
        pool, self._pool = self._pool, _NOT_STARTED
        if isinstance(pool, Executor):
            for error in pool.shutdown(kill=kill_workers):
                self.reporter.message(f"dotevals: {error}")
        self.store.unlock()

    def _start(self, jobs: list[Job]) -> Executor | None:
        """The run's pool of workers (None: rows run here), chosen and started at the
        first call of a run."""
        if self._pool is _NOT_STARTED:
            self.store.lock()
            self._started = True
            if self.budget.limited:
                self.budget = Budget(self.options.max_cost, self.options.max_tokens)
                self.store.spent(self.budget)
            self._pool = self._new_pool(jobs)
        return self._pool

    def _new_pool(self, jobs: list[Job]) -> Executor | None:
        sync_jobs = [job for job in jobs if not job.evaluation.is_async]
        if not sync_jobs:
            return None
        options = self.options
        rows = None
        if options.workers == "auto":  # sized by the rows left to run, stored ones left out
            remaining = [
                self.store.remaining_rows(
                    job.storage_name,
                    job.evaluation.total,
                    self.samples,
                    short=job.name if job.item else None,
                    key=job.evaluation.key,
                    epochs=job.evaluation.epochs or options.epochs or 1,
                )
                for job in sync_jobs
            ]
            rows = None if None in remaining else sum(remaining)  # type: ignore[arg-type]
        return make_executor(
            options.executor, options.workers, rows, options.worker_memory, self.reporter.message
        )

    # Awaits in the methods below suspend only where an event loop is needed: on worker
    # processes (the stream; closing the pool), async rows, async fixtures (greenlets)
    # and async evaluations run together. ``run`` drives a run with none of these
    # without a loop, and ``loop_free.run`` raises if the coroutine suspends after all.
    async def _run_jobs(self, jobs: list[Job]) -> None:
        items = [job.item for job in jobs if job.item is not None]
        if items:
            self._items = PytestItems(items[0].session)
        pool = self._start(jobs)
        groups = group_jobs(jobs, self.options.concurrent)
        interrupted = True
        with sigterm_as_ctrl_c():
            try:
                await self._run_groups(groups)
                interrupted = False
            finally:
                if interrupted and items:  # now, while async fixtures still have their loop
                    await self._teardown_after_stop(self._pytest.teardown_all())
                if pool is None:
                    self.close(interrupted)
                else:  # a pool may take a while to shut down: the loop goes on meanwhile
                    import asyncio  # a run with workers has an event loop

                    await asyncio.to_thread(self.close, interrupted)

    async def _run_groups(self, groups: list[list[Job]]) -> None:
        for index, group in enumerate(groups):
            session = self._items.session if self._items is not None else None
            if session is not None and (session.shouldfail or session.shouldstop):
                await self._pytest.teardown_all()
                break  # -x / --maxfail: pytest stops the session after this
            following = [job for later in groups[index + 1 :] for job in later]
            nextitem = following[0].item if following else None
            if len(group) == 1:
                await self._run_alone(group[0], nextitem, last=not following)
            else:
                await self._run_together(group, nextitem, last=not following)

    async def _teardown_after_stop(self, teardown: Awaitable[None]) -> None:
        """Ctrl-C or a crash stopped the run: tear fixtures down, saying so if that fails."""
        try:
            await teardown
        except Exception as exc:  # the stop itself is what propagates
            self.reporter.message(f"dotevals: tearing fixtures down after the stop failed: {exc!r}")

    async def _tear_down(self, outcome: EvaluationOutcome, teardown: Awaitable[None]) -> None:
        """An evaluation's teardown; its error is reported on the evaluation's item."""
        try:
            await teardown
        except stops():
            raise
        except BaseException as exc:  # reported on the item
            outcome.teardown_error = exc

    async def _stop_workers(self, outcome: EvaluationOutcome) -> None:
        """The run's last evaluation is torn down: so are the workers' fixtures, whose
        errors are that evaluation's teardown errors, as pytest reports a session
        fixture's on the last test."""
        pool = self._pool
        if not isinstance(pool, Executor):
            return
        self._pool = None  # nothing runs after the last evaluation
        import asyncio  # a run with workers has an event loop

        errors = list(dict.fromkeys(await asyncio.to_thread(pool.shutdown)))
        if errors and outcome.teardown_error is None:
            outcome.teardown_error = FixtureError("\n\n".join(errors))
        elif errors:  # its own teardown failed too: that is the error its item shows
            for error in errors:
                self.reporter.message(f"dotevals: {error}")

    async def _run_alone(self, job: Job, nextitem: pytest.Item | None, last: bool) -> None:
        outcome = EvaluationOutcome(job.name, job.item)
        run_rows = await self._set_up(job, outcome)
        if run_rows is not None:
            with self._progress(), self.reporter.capture(outcome, "call"):
                try:
                    await self._execute(job, run_rows, outcome)
                except stops():
                    self.outcomes.append(outcome)  # the summary shows what it stored
                    raise
        self._report_run(outcome)
        if job.item is not None:
            await self._tear_down(outcome, self._pytest.teardown(job.item, nextitem))
        if last:
            await self._stop_workers(outcome)
        self._finish(outcome)

    async def _run_together(
        self, jobs: list[Job], nextitem: pytest.Item | None, last: bool
    ) -> None:
        """Set each job up and detach it, run them all at once, then report and tear down."""
        started: list[_Started] = []
        for job in jobs:
            outcome = EvaluationOutcome(job.name, job.item)
            run_rows = await self._set_up(job, outcome)
            detached = None
            if job.item is not None:
                detached = await self._pytest.detach(job.item)
            started.append(_Started(job, outcome, run_rows, detached))
        import asyncio  # only async jobs run together, on the event loop

        with self._progress():
            try:
                await asyncio.gather(
                    *(
                        self._execute(s.job, s.run_rows, s.outcome)
                        for s in started
                        if s.run_rows is not None
                    )
                )
            except stops():
                self.outcomes.extend(s.outcome for s in started if s.outcome.setup_error is None)
                for s in started:
                    if s.detached is not None:
                        await self._teardown_after_stop(self._pytest.teardown_detached(s.detached))
                raise
        for s in started:
            self._report_run(s.outcome)
            if s.detached is not None:
                with self.reporter.capture(s.outcome, "teardown"):
                    await self._tear_down(s.outcome, self._pytest.teardown_detached(s.detached))
        items = [job.item for job in jobs if job.item is not None]
        if items:  # the scopes around the last item, as after a test
            await self._tear_down(started[-1].outcome, self._pytest.teardown(items[-1], nextitem))
        if last:
            await self._stop_workers(started[-1].outcome)
        for s in started:
            self._finish(s.outcome)

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
    def _pytest(self) -> PytestItems:
        assert self._items is not None
        return self._items

    async def _set_up(self, job: Job, outcome: EvaluationOutcome) -> RunRows | None:
        """Set the job's fixtures up; how its rows run, or None when the set-up failed."""
        try:
            if isinstance(self._pool, Executor) and not job.evaluation.is_async:
                return await self._in_workers(job, self._pool)
            return await self._in_main_process(job)
        except stops():
            raise
        except BaseException as exc:  # a failed setup fails the item
            outcome.setup_error = exc
            return None

    async def _in_main_process(self, job: Job) -> RunRows:
        """Rows run here with the fixture values: async ones on the loop."""
        evaluation = job.evaluation
        values = job.fixtures
        if job.item is not None:
            values = await self._pytest.fixture_values(job.item, evaluation.fixture_names)
        job.models = models_metadata(values)
        timeout = self._timeout(evaluation)
        metering = Metering(self.options.seed, Prices(user_prices()))
        if evaluation.is_async:
            return functools.partial(
                run_async, evaluation, values, timeout=timeout, metering=metering
            )

        async def run_here(rows: Rows, sink: Sink) -> None:
            run_sync(evaluation, values, rows, sink, timeout, metering)

        return run_here

    async def _in_workers(self, job: Job, pool: Executor) -> RunRows:
        """Rows stream through the pool; workers build the user fixtures from specs."""
        from dotevals._engine.stream import stream  # cloudpickle: only for workers
        from dotevals._engine.wire import Payload

        evaluation = job.evaluation
        specs: dict[str, FixtureSpec] = {}
        values = job.fixtures
        if job.item is not None:
            specs, values = await self._pytest.worker_fixtures(job.item)
        job.models = models_metadata(values, specs)
        payload = Payload(
            func=evaluation.func,
            retrying=evaluation.retrying,
            fixture_names=evaluation.fixture_names,
            specs=specs,
            values=values,
            fixture_closure=tuple(specs),
            timeout=self._timeout(evaluation),
            seed=self.options.seed,
            prices=user_prices(),
        )
        chunk_size = strategy_for(evaluation).batch_size  # type: ignore[union-attr]

        return functools.partial(stream, pool, job.name, payload, chunk_size=chunk_size)

    async def _execute(self, job: Job, run_rows: RunRows, outcome: EvaluationOutcome) -> None:
        evaluation = job.evaluation
        start = time.perf_counter()
        status: Status = "failed"
        writer = None
        bar = None
        try:
            epochs, reducers = evaluation.repeats(self.options.epochs)
            writer = self.store.start_evaluation(
                job.storage_name,
                {**job.metadata(), "seed": self.options.seed},
                self.reporter.message,
                short=job.name if job.item else None,
                key=evaluation.key,
                epochs=epochs,
                reducers=reducers,
                budget=self.budget,
            )
            outcome.stored_name = writer.name
            own = evaluation.fail_on_error
            outcome.fail_on_error = own if own is not None else self.options.fail_on_error
            rows = writer.pending(evaluation.rows(), self.samples)
            bar = ProgressBar(
                job.name,
                self._total(evaluation, writer),
                self.progress,
                self.reporter.progress_file,
            )

            errored_before = writer.errored_before

            def sink(record: Record) -> None:
                writer.add(record)
                bar.update(record)
                if record.failed:
                    outcome.row_errors.add(record)
                    if (record.item_id, record.epoch) in errored_before:
                        outcome.rerun_errors += 1
                if record.model_calls:
                    outcome.model_calls.add(record.model_calls)

            await run_rows(rows, sink)
            status = "completed"
            if writer.budget_stop is not None:
                outcome.budget = writer.budget_stop
                status = "interrupted"
                experiment = self.store.experiment_name
                self.budget.stop_line(writer.budget_stop, experiment, self.reporter.message)
        except stops() as exc:
            outcome.error = exc
            status = "interrupted"
            raise
        except FixtureError as exc:  # a worker could not set the fixtures up: a failed setup
            outcome.setup_error = outcome.error = exc
        except Exception as exc:
            outcome.error = exc
        finally:
            if bar is not None:
                bar.close()
            if writer is not None:
                self._finish_run(writer, status, outcome)
            outcome.duration = time.perf_counter() - start

    def _finish_run(self, writer: RecordWriter, status: Status, outcome: EvaluationOutcome) -> None:
        """Store the last rows and the status; storage failing fails this evaluation only."""
        try:
            outcome.summary = writer.finish(status)
            failures = outcome.summary.metric_errors
            if failures and outcome.error is None:
                more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
                outcome.error = MetricError(f"{outcome.label}: {failures[0]}{more}")
        except Exception as exc:
            outcome.summary = writer.stored_summary()
            if outcome.error is None:
                outcome.error = exc
            else:  # the evaluation's own error is the one reported on its item
                self.reporter.message(f"dotevals: {exc}")
        outcome.new_rows = writer.stored - writer.stored_again
        outcome.rerun_rows = writer.stored_again

    def _timeout(self, evaluation: EvaluationSpec) -> float | None:
        return evaluation.timeout if evaluation.timeout is not None else self.options.timeout

    def _total(self, evaluation: EvaluationSpec, writer: RecordWriter) -> int | None:
        """The samples the run will score, for the progress bar (None: unknown)."""
        total, epochs = evaluation.total, writer.epochs
        if total is None:
            return None if self.samples is None else self.samples * epochs
        remaining = max(0, total * epochs - sum(map(len, writer.completed_epochs)))
        return remaining if self.samples is None else min(remaining, self.samples * epochs)

    def _finish(self, outcome: EvaluationOutcome) -> None:
        """The evaluation is over and torn down: collect it and report its teardown."""
        if outcome.summary is not None and outcome.error is None:
            self.results[outcome.name] = outcome.summary
        self.outcomes.append(outcome)
        self.reporter.report(outcome, "teardown")


async def arun(
    evaluation: Callable[..., Any],
    *,
    fixtures: Mapping[str, Any] | None = None,
    **options: Unpack[RunOptionsKeywords],
) -> EvaluationSummary:
    """Like :func:`run`, for code already inside an event loop (``await dotevals.arun(...)``)."""
    runner, job = _one_job(evaluation, fixtures, options)
    await runner.run_evaluations([job])
    return outcome_summary(runner)


def run(
    evaluation: Callable[..., Any],
    *,
    fixtures: Mapping[str, Any] | None = None,
    **options: Unpack[RunOptionsKeywords],
) -> EvaluationSummary:
    """Run one ``@foreach`` evaluation outside pytest and return its summary.

    ``fixtures`` holds the values of the evaluation's non-column parameters
    (what pytest fixtures would provide); the keyword arguments are run
    options, the keywords of :class:`Runner` (``experiment``, ``samples``,
    ``storage``, ``workers``, ``worker_memory``, ``timeout``, ``executor``,
    ``progress``...; the table is :class:`dotevals.options.RunOptions`)::

        summary = dotevals.run(eval_math, fixtures={"model": my_model}, experiment="baseline")
        summary.metrics  # {"exact_match": {"accuracy": 0.9}}

    A keyword that is not a run option is taken as a fixture value too
    (``dotevals.run(eval_math, model=my_model)``), although type checkers only
    know the options; a fixture whose name is an option's, such as ``storage``,
    can only be given in ``fixtures``.

    Without ``storage``, the project's storage is used, as pytest's (see
    :mod:`dotevals.storage.location`). Errored rows are left for the caller to
    judge, unless a ``fail_on_error`` bound is set (this keyword, or the
    evaluation's ``@foreach(..., fail_on_error=...)``): RowsFailedError when its
    stored rows errored beyond it.
    """
    if _loop_running():
        raise DotevalsError(
            "dotevals.run() cannot be called from a running event loop (for example in "
            "Jupyter); use 'await dotevals.arun(...)' there"
        )
    runner, job = _one_job(evaluation, fixtures, options)
    runner.run([job])
    return outcome_summary(runner)


def _loop_running() -> bool:
    """An event loop runs in this thread (asyncio is imported then)."""
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        return False
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _one_job(
    evaluation: Callable[..., Any], fixtures: Mapping[str, Any] | None, options: Mapping[str, Any]
) -> tuple[Runner, functools.partial[Any]]:
    """The Runner of ``run``/``arun`` and the evaluation bound to its fixture values."""
    options, values = split_keywords(options)
    twice = sorted(set(values) & set(fixtures or {}))
    if twice:
        raise ConfigurationError(f"{', '.join(twice)} given both in fixtures= and by keyword")
    return Runner(**options), functools.partial(evaluation, **values, **(fixtures or {}))


def outcome_summary(runner: Runner) -> EvaluationSummary:
    """The summary of the Runner's one evaluation; the error that stopped it is raised,
    and RowsFailedError when a ``fail_on_error`` bound was set and its stored rows
    errored beyond it (without one, judging errors is left to the caller)."""
    outcome = runner.outcomes[0]
    if outcome.error is not None:
        raise outcome.error
    assert outcome.summary is not None
    if outcome.fail_on_error is not None and outcome.rows_failed:
        from dotevals._report.text import rows_failed_report, show_errors_command

        command = show_errors_command(runner.store.experiment_name, runner.store.storage.url)
        raise RowsFailedError(rows_failed_report(outcome, command))
    return outcome.summary
