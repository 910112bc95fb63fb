"""The evaluations of one pytest session: their options, their run and their report.

:mod:`dotevals.plugin` creates one :class:`EvaluationSession` when collection
has found an evaluation, and only then: a pytest session without one never
imports this module, the Runner, the engine or the storage.
"""

from __future__ import annotations

import functools
import os
import sys
from contextlib import AbstractContextManager, nullcontext
from types import TracebackType
from typing import Any, cast

import pytest

from dotevals._declare.evaluation import get_evaluation
from dotevals._declare.gates import GateCheck, check_gates, unmatched
from dotevals._pytest_bridge.internals import skip_at_item
from dotevals._pytest_bridge.project import project_root
from dotevals._report.format import printable
from dotevals._report.text import (
    error_summary,
    model_calls_line,
    rows_failed_report,
    show_errors_command,
    summary_labels,
    summary_notes,
    summary_table,
    usage_table,
)
from dotevals.errors import DotevalsError, GateFailedError, RowsFailedError
from dotevals.options import OPTIONS, RunOptions
from dotevals.runners import EvaluationOutcome, Runner, RunReporter
from dotevals.storage.location import display_url
from dotevals.storage.reading import accounts

__all__ = ["EvaluationSession", "run_options"]


def run_options(config: pytest.Config) -> RunOptions:
    """The options of this session: the command line's, else the ini file's, else the
    defaults. A bad value stops the session; the message says so when it is the ini's."""
    parsed = {}
    for spec in OPTIONS:
        value, where = config.getoption(spec.ini), ""
        if value is None:
            value, where = config.getini(spec.ini), f"{spec.ini} in the ini file: "
            if value in (None, "", []):
                value = spec.default_under_pytest
            if spec.in_project is not None:
                value = spec.in_project(value, project_root(config))
        if spec.text is not None and isinstance(value, str):
            value = spec.text(value)
        try:
            parsed[spec.name] = spec.parse(value)
        except DotevalsError as exc:
            raise pytest.UsageError(f"{where}{exc}") from None
    return RunOptions(**parsed)


class EvaluationSession:
    """The evaluation items of a pytest session, run after its ordinary tests."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.options = run_options(config)  # a bad one stops the session before any test
        self.runner: Runner | None = None
        #: Each evaluation item's checked gates, by node id (None: no evaluation has gates).
        self.checks: dict[str, list[GateCheck]] | None = None
        #: A --fail-under gate whose score no evaluation had.
        self.unmatched: str | None = None

    def run(self, session: pytest.Session, evaluations: list[pytest.Item]) -> None:
        """The ordinary tests through pytest's protocol, then ``evaluations`` through the
        Runner, whose workers boot while the tests run."""
        config = self.config
        try:
            runner = Runner(reporter=_PytestReporter(self), **self.options.keywords())
            # before any test runs: a second run of the experiment stops here
            runner.start_workers(evaluations)
        except DotevalsError as exc:
            raise pytest.UsageError(str(exc)) from None
        self.runner = runner
        try:
            deferred = set(evaluations)
            tests = [item for item in session.items if item not in deferred]
            ordered = tests + evaluations
            for index, item in enumerate(tests):
                config.hook.pytest_runtest_protocol(item=item, nextitem=ordered[index + 1])
                if session.shouldfail:
                    raise session.Failed(session.shouldfail)
                if session.shouldstop:
                    raise session.Interrupted(session.shouldstop)
            runner.run(evaluations)
        finally:
            runner.close(kill_workers=True)  # only has work left when the run stopped early

    def summary(self, terminalreporter: Any) -> None:
        """The ``dotevals summary`` section: one line per evaluation, notes on those that
        did not run or ran errored rows again, then the errors; fit to the width of
        pytest's terminal (``COLUMNS`` when set)."""
        runner = self.runner
        if runner is None or not runner.outcomes:
            return
        write = terminalreporter.write_line
        width = self.config.get_terminal_writer().fullwidth
        outcomes = runner.outcomes
        terminalreporter.write_sep("=", "dotevals summary")
        storage = display_url(runner.store.storage.url)
        write(f"experiment: {runner.store.experiment_name} ({storage})")
        for line in summary_table(outcomes, self.checks, width):
            write(line)
        calls = model_calls_line(outcomes)
        if calls is not None:
            write(calls)
        labels = summary_labels(outcomes, self.checks, width)
        spent = [
            (labels.get(o.label, o.label), accounts(o.summary))
            for o in outcomes
            if o.summary is not None
        ]
        usage = usage_table(spent, width)
        if usage:
            write("")
            for line in usage:
                write(line)
        notes = summary_notes(outcomes, labels)
        if notes:
            write("")
            for line in notes:
                write(line)
        if self.unmatched is not None:
            write("")
            write(f"error: {self.unmatched}", red=True)
        errors = error_summary(outcomes, self.show_errors(), labels, width)
        if errors:
            write("")
            for line in errors:
                write(line)

    def finish(self, session: pytest.Session) -> None:
        """A --fail-under gate whose score no evaluation had is a usage error."""
        runner = self.runner
        if runner is None or not runner.outcomes or self.checks is None:
            return
        scores = {
            score
            for outcome in runner.outcomes
            if outcome.summary is not None
            for score in outcome.summary.estimates
        }
        missing = unmatched(self.options.fail_under, scores)
        if missing:
            keys = ", ".join(gate.key for gate in missing)
            known = printable(", ".join(sorted(scores))) or "none"
            self.unmatched = (
                f"--fail-under {keys}: no evaluation of this run has that score (their scores: "
                f"{known}); check the name"
            )
            session.exitstatus = pytest.ExitCode.USAGE_ERROR

    def check_gates(self, outcome: EvaluationOutcome, item: pytest.Item) -> DotevalsError | None:
        """Check the evaluation's metrics against its gates; the error failing its item."""
        evaluation = get_evaluation(getattr(item, "obj", None))
        own = evaluation.fail_under if evaluation is not None else ()
        shared = self.options.fail_under
        if outcome.summary is None or not (own or shared):
            return None
        estimates = outcome.summary.estimates
        if self.checks is None:
            self.checks = {}
        try:
            checks = check_gates(outcome.name, estimates, own, shared)
        except DotevalsError as exc:
            return exc
        self.checks[item.nodeid] = checks
        failed = [check for check in checks if not check.passed]
        if not failed:
            return None
        return GateFailedError(
            f"{outcome.name}: "
            + "; ".join(check.describe() for check in failed)
            + f" (over {outcome.summary.rows} stored rows)"
        )

    def show_errors(self) -> str:
        """The command listing the errored rows of this run's experiment."""
        runner = cast(Runner, self.runner)  # set before any evaluation reports
        return show_errors_command(runner.store.experiment_name, runner.store.storage.url)


class _PytestReporter(RunReporter):
    """Reports evaluations as pytest reports tests, with captured output."""

    def __init__(self, evaluations: EvaluationSession):
        self.evaluations = evaluations
        config = evaluations.config
        self.terminal = config.pluginmanager.get_plugin("terminalreporter")
        self.capman = config.pluginmanager.get_plugin("capturemanager")
        self.progress_file = _Uncaptured(self.capman) if self.capman else None

    def message(self, text: str) -> None:
        if self.terminal is None:
            super().message(text)
            return
        with self.capman.global_and_fixture_disabled() if self.capman else nullcontext():
            self.terminal.write_line(text)  # also while an evaluation's output is captured

    def progress_started(self) -> None:
        """Bars go on a line of their own, below what pytest has written."""
        if self.terminal is not None and self.terminal.currentfspath is not None:
            self.terminal.ensure_newline()
            self.terminal.currentfspath = None

    def progress_finished(self) -> None:
        """Back to the line above the (cleared) bars: pytest's next line starts there."""
        if self.progress_file is not None:
            self.progress_file.write("\x1b[A")

    def capture(self, outcome: EvaluationOutcome, when: str) -> AbstractContextManager[None]:
        if self.capman is None or outcome.item is None:
            return nullcontext()
        return self.capman.item_capture(when, outcome.item)

    def report(self, outcome: EvaluationOutcome, when: str) -> None:
        item = outcome.item
        if item is None:
            return
        ihook = item.ihook
        if when == "setup":
            ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        error = {
            "setup": outcome.setup_error,
            "call": outcome.error,
            "teardown": outcome.teardown_error,
        }[when]
        if when == "call" and error is None and outcome.rows_failed:
            error = RowsFailedError(rows_failed_report(outcome, self.evaluations.show_errors()))
        elif when == "call" and error is None and outcome.budget is not None:
            error = skip_at_item(f"stopped at the budget: {outcome.budget}")
        elif when == "call" and error is None:
            error = self.evaluations.check_gates(outcome, item)
        call = pytest.CallInfo.from_call(functools.partial(_raise, error), when)  # type: ignore[arg-type]
        call.duration = outcome.duration if when == "call" else 0.0
        report = ihook.pytest_runtest_makereport(item=item, call=call)
        ihook.pytest_runtest_logreport(report=report)
        if when == "teardown":
            ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)


class _Uncaptured:
    """A file for progress bars that writes to the terminal past pytest's capture."""

    def __init__(self, capman: Any):
        self._capman = capman

    def write(self, text: str) -> int:
        with self._capman.global_and_fixture_disabled():
            sys.stderr.write(text)
            sys.stderr.flush()
        return len(text)

    def flush(self) -> None:
        pass


def _raise(error: BaseException | None) -> None:
    """Raise an evaluation's error for pytest to report: a DotevalsError as its one
    message, any other from the user's code on, as pytest shows a test's error."""
    if error is None:
        return
    if isinstance(error, DotevalsError):
        pytest.fail(str(error), pytrace=False)
    __tracebackhide__ = True  # this frame: only now, or pytest would say all are hidden
    raise error.with_traceback(_from_user_code(error.__traceback__))


#: Where dotevals' own code is: its frames are left out of the errors pytest reports.
_OWN_CODE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _from_user_code(traceback: TracebackType | None) -> TracebackType | None:
    """``traceback`` without the frames of dotevals it starts with (the Runner's, which
    set the item up or ran it); all of it when nothing else is on it."""
    start = traceback
    while traceback is not None and traceback.tb_frame.f_code.co_filename.startswith(_OWN_CODE):
        traceback = traceback.tb_next
    return traceback or start
