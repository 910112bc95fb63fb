"""The pytest plugin: options, collection of evaluations, deferred run, reporting.

Evaluation items (``@foreach`` functions, also ``eval_*`` functions in
``eval_*.py`` files) are collected with the ordinary tests. Ordinary tests run
first through pytest's own loop; the evaluations then run through the
:class:`~dotevals.runners.Runner`, and each one is reported as a pytest item.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import sys
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import pytest
from _pytest.python import path_matches_patterns
from _pytest.runner import CallInfo

from dotevals.deferred import is_async_fixture, setup_async_fixture
from dotevals.errors import DotevalsError, GateFailedError, RowsFailedError
from dotevals.foreach import get_evaluation
from dotevals.gates import GateCheck, check_gates, unmatched
from dotevals.options import OPTIONS, RunOptions
from dotevals.project import project_root
from dotevals.providers import register_fixtures
from dotevals.report import error_summary, rows_failed_report, show_errors_command, summary_table
from dotevals.runners import EvaluationOutcome, Runner, RunReporter

_RUNNER = pytest.StashKey[Runner]()
_OPTIONS = pytest.StashKey[RunOptions]()
#: Each evaluation item's checked gates, by node id.
_CHECKS = pytest.StashKey[dict[str, list[GateCheck]]]()
_UNMATCHED = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """One flag set and one ini setting per row of the option table."""
    group = parser.getgroup("dotevals", "dotevals evaluations")
    for spec in OPTIONS:
        flags, text = spec.cli_flags(), f"{spec.help}. ini: {spec.ini}"
        if spec.kind == "switch":
            group.addoption(*flags, dest=spec.ini, action=argparse.BooleanOptionalAction, help=text)
            parser.addini(spec.ini, f"default for {flags[-1]}", "bool", spec.default_under_pytest)
        elif spec.kind == "repeat":
            group.addoption(*flags, dest=spec.ini, action="append", metavar=spec.metavar, help=text)
            parser.addini(spec.ini, f"default for {flags[-1]}", "args", [])
        else:
            group.addoption(*flags, dest=spec.ini, metavar=spec.metavar, help=text)
            parser.addini(spec.ini, f"default for {flags[-1]}", default=None)


def _run_options(config: pytest.Config) -> RunOptions:
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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "dotevals: an evaluation run by dotevals (@foreach)")
    config.stash[_OPTIONS] = _run_options(config)  # a bad one stops the session before any test
    register_fixtures(config)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    if (
        file_path.suffix == ".py"
        and file_path.name.startswith("eval_")
        and not parent.session.isinitpath(file_path)  # pytest collects those itself
        and not path_matches_patterns(file_path, parent.config.getini("python_files"))
    ):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(
    collector: pytest.Module | pytest.Class, name: str, obj: object
) -> list[pytest.Function] | None:
    if name.startswith("eval_") and inspect.isfunction(obj) and hasattr(collector, "_genfunctions"):
        return list(collector._genfunctions(name, obj))
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _is_evaluation(item):
            item.add_marker(pytest.mark.dotevals)


def _is_evaluation(item: pytest.Item) -> bool:
    return get_evaluation(getattr(item, "obj", None)) is not None


@pytest.hookimpl(tryfirst=True)
def pytest_fixture_setup(fixturedef: Any, request: Any) -> Any:
    item = getattr(request, "_pyfuncitem", None)
    if is_async_fixture(fixturedef) and item is not None and _is_evaluation(item):
        return setup_async_fixture(fixturedef, request)
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Evaluations run through the Runner; pytest only calls one itself in an xdist worker."""
    if _is_evaluation(pyfuncitem):
        pytest.fail(
            f"{pyfuncitem.nodeid}: dotevals evaluations do not run under pytest-xdist (-n); "
            "run them without -n and use --workers to spread rows over processes",
            pytrace=False,
        )
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool | None:
    evaluations = [item for item in session.items if _is_evaluation(item)]
    if not evaluations or session.config.option.collectonly:
        return None
    if hasattr(session.config, "workerinput"):  # an xdist worker: xdist owns the loop
        return None
    if session.testsfailed and not session.config.option.continue_on_collection_errors:
        return None  # pytest's own loop reports the collection errors
    config = session.config
    try:
        runner = Runner(reporter=_PytestReporter(config), **config.stash[_OPTIONS].keywords())
        runner.store.lock()  # before any test runs: a second run of the experiment stops here
        runner.start_workers(evaluations)  # they boot while the ordinary tests run
    except DotevalsError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[_RUNNER] = runner
    try:
        tests = [item for item in session.items if not _is_evaluation(item)]
        ordered = tests + evaluations
        for index, item in enumerate(tests):
            item.config.hook.pytest_runtest_protocol(item=item, nextitem=ordered[index + 1])
            if session.shouldfail:
                raise session.Failed(session.shouldfail)
            if session.shouldstop:
                raise session.Interrupted(session.shouldstop)
        asyncio.run(runner.run_evaluations(evaluations))
    finally:
        runner.close(kill_workers=True)  # only has work left when the run stopped early
    if session.shouldfail:
        raise session.Failed(session.shouldfail)
    if session.shouldstop:
        raise session.Interrupted(session.shouldstop)
    return True


class _PytestReporter(RunReporter):
    """Reports evaluations as pytest reports tests, with captured output."""

    def __init__(self, config: pytest.Config):
        self.config = config
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
        if when == "call" and error is None and outcome.every_row_failed:
            error = RowsFailedError(rows_failed_report(outcome, _show_errors(self.config)))
        elif when == "call" and error is None:
            error = _check_gates(self.config, outcome, item)
        call = CallInfo.from_call(lambda: _raise(error), when)  # type: ignore[arg-type]
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


def _check_gates(
    config: pytest.Config, outcome: EvaluationOutcome, item: pytest.Item
) -> DotevalsError | None:
    """Check the evaluation's metrics against its gates; the error failing its item, if any."""
    evaluation = get_evaluation(getattr(item, "obj", None))
    own = evaluation.fail_under if evaluation is not None else ()
    shared = config.stash[_OPTIONS].fail_under
    if outcome.summary is None or not (own or shared):
        return None
    estimates = outcome.summary.estimates
    config.stash.setdefault(_CHECKS, {})
    try:
        checks = check_gates(outcome.name, estimates, own, shared)
    except DotevalsError as exc:
        return exc
    config.stash[_CHECKS][item.nodeid] = checks
    failed = [check for check in checks if not check.passed]
    if not failed:
        return None
    return GateFailedError(
        f"{outcome.name}: "
        + "; ".join(check.describe() for check in failed)
        + f" (over {outcome.summary.rows} stored rows)"
    )


def _raise(error: BaseException | None) -> None:
    if error is None:
        return
    if isinstance(error, DotevalsError):
        pytest.fail(str(error), pytrace=False)
    raise error


def pytest_terminal_summary(terminalreporter: Any) -> None:
    runner = terminalreporter.config.stash.get(_RUNNER, None)
    if runner is None or not runner.outcomes:
        return
    terminalreporter.write_sep("=", "dotevals summary")
    storage = runner.store.storage.url
    terminalreporter.write_line(f"experiment: {runner.experiment_name} ({storage})")
    checks = terminalreporter.config.stash.get(_CHECKS, None)
    for line in summary_table(runner.outcomes, checks):
        terminalreporter.write_line(line)
    problem = terminalreporter.config.stash.get(_UNMATCHED, None)
    if problem is not None:
        terminalreporter.write_line("")
        terminalreporter.write_line(f"error: {problem}", red=True)
    errors = error_summary(runner.outcomes, _show_errors(terminalreporter.config))
    if errors:
        terminalreporter.write_line("")
        for line in errors:
            terminalreporter.write_line(line)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A --fail-under gate whose score no evaluation had is a usage error."""
    config = session.config
    runner = config.stash.get(_RUNNER, None)
    if runner is None or not runner.outcomes or _CHECKS not in config.stash:
        return
    scores = {
        score
        for outcome in runner.outcomes
        if outcome.summary is not None
        for score in outcome.summary.estimates
    }
    missing = unmatched(config.stash[_OPTIONS].fail_under, scores)
    if missing:
        keys = ", ".join(gate.key for gate in missing)
        known = ", ".join(sorted(scores)) or "none"
        config.stash[_UNMATCHED] = (
            f"--fail-under {keys}: no evaluation of this run has that score (their scores: "
            f"{known}); check the name"
        )
        session.exitstatus = pytest.ExitCode.USAGE_ERROR


def _show_errors(config: pytest.Config) -> str:
    """The command listing the errored rows of this run's experiment."""
    runner = config.stash[_RUNNER]
    return show_errors_command(runner.experiment_name, runner.store.storage.url)
