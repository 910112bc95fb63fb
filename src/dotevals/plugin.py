"""The pytest plugin: options, collection of evaluations, deferred run, reporting.

Evaluation items (``@foreach`` functions, also ``eval_*`` functions in
``eval_*.py`` files) are collected with the ordinary tests. Ordinary tests run
first through pytest's own loop; the evaluations then run through the
:class:`~dotevals.runners.Runner`, and each one is reported as a pytest item.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import inspect
import sys
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import pytest
from _pytest.python import path_matches_patterns
from _pytest.runner import CallInfo

from dotevals.deferred import is_async_fixture, setup_async_fixture
from dotevals.engine.main_executor_choice import parse_executor
from dotevals.engine.main_sizing import parse_memory, parse_workers
from dotevals.errors import DotevalsError, GateFailedError, RowsFailedError
from dotevals.evaluation import parse_timeout
from dotevals.foreach import get_evaluation
from dotevals.gates import Gate, GateCheck, check_gates, parse_gate, unmatched
from dotevals.project import project_root
from dotevals.providers import register_fixtures
from dotevals.report import error_summary, rows_failed_report, show_errors_command, summary_table
from dotevals.runners import EvaluationOutcome, Runner, RunReporter
from dotevals.storage import DEFAULT_STORAGE, get_storage
from dotevals.storage.registry import resolve_storage

_RUNNER = pytest.StashKey[Runner]()
#: The --fail-under gates, and each evaluation item's checked gates by node id.
_GATES = pytest.StashKey[list[Gate]]()
_CHECKS = pytest.StashKey[dict[str, list[GateCheck]]]()
_UNMATCHED = pytest.StashKey[str]()


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dotevals", "dotevals evaluations")
    group.addoption(
        "--experiment",
        dest="dotevals_experiment",
        help="experiment to store results in and resume (default: a new ephemeral one). "
        "ini: dotevals_experiment",
    )
    group.addoption(
        "--samples",
        dest="dotevals_samples",
        type=_non_negative_int,
        help="run at most this many new rows per evaluation. ini: dotevals_samples",
    )
    group.addoption(
        "--storage",
        dest="dotevals_storage",
        help="where results are stored: json://PATH or sqlite://PATH; a PATH without a "
        "scheme is json:// (default json://.dotevals in the project root). "
        "ini: dotevals_storage, a relative path taken from the project root",
    )
    group.addoption(
        "-C",
        "--concurrent",
        dest="dotevals_concurrent",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run async evaluations concurrently with each other (-C for short; "
        "--no-concurrent: one after another). ini: dotevals_concurrent",
    )
    group.addoption(
        "--workers",
        dest="dotevals_workers",
        help="worker processes for sync evaluations: a number or 'auto' (physical cores, "
        "capped by memory and rows); default: run them in the main process. "
        "ini: dotevals_workers",
    )
    group.addoption(
        "--worker-memory",
        dest="dotevals_worker_memory",
        help="memory one worker needs, used by --workers auto (e.g. 2GiB; default 512MiB). "
        "ini: dotevals_worker_memory",
    )
    group.addoption(
        *_timeout_flags(),
        dest="dotevals_timeout",
        help="seconds one row may take (retries included) for evaluations whose ForEach "
        "sets no timeout; a row that runs longer is stored with a timeout error. "
        "ini: dotevals_timeout",
    )
    group.addoption(
        "--executor",
        dest="dotevals_executor",
        help="where sync evaluations run with workers: 'local' (a process pool, the default) "
        "or 'dask://HOST:PORT' (a Dask cluster; needs dotevals[dask]). ini: dotevals_executor",
    )
    group.addoption(
        "--fail-under",
        dest="dotevals_fail_under",
        action="append",
        metavar="SCORE=VALUE",
        help="fail an evaluation whose SCORE (its first metric, or SCORE:METRIC) is below "
        "VALUE over every stored row; repeatable. ini: dotevals_fail_under",
    )
    group.addoption(
        "--no-progress",
        action="store_true",
        default=False,
        help="do not draw progress bars",
    )
    parser.addini("dotevals_experiment", "default for --experiment", default=None)
    parser.addini("dotevals_samples", "default for --samples", default=None)
    parser.addini("dotevals_storage", "default for --storage", default=None)
    parser.addini("dotevals_workers", "default for --workers", default=None)
    parser.addini("dotevals_worker_memory", "default for --worker-memory", default=None)
    parser.addini("dotevals_executor", "default for --executor", default=None)
    parser.addini("dotevals_timeout", "default for --row-timeout", default=None)
    parser.addini("dotevals_fail_under", "default for --fail-under", type="args", default=[])
    parser.addini("dotevals_concurrent", "default for --concurrent", type="bool", default=False)


def _timeout_flags() -> list[str]:
    """``--row-timeout``, and ``--timeout`` too unless pytest-timeout owns that name."""
    if importlib.util.find_spec("pytest_timeout") is None:
        return ["--row-timeout", "--timeout"]
    return ["--row-timeout"]


def _option(config: pytest.Config, name: str) -> Any:
    """The command line value if given, else the ini value."""
    value = config.getoption(f"dotevals_{name}")
    return config.getini(f"dotevals_{name}") if value is None else value


def _samples(config: pytest.Config) -> int | None:
    value = _option(config, "samples")
    if value is None or isinstance(value, int):
        return value
    try:
        return _non_negative_int(str(value))
    except argparse.ArgumentTypeError as exc:
        raise pytest.UsageError(f"dotevals_samples in the ini file: {exc}") from None


def _storage(config: pytest.Config) -> str:
    """``--storage`` as given; else the ini value or the default, from the project root."""
    given = config.getoption("dotevals_storage")
    if given is not None:
        return given
    configured = config.getini("dotevals_storage") or DEFAULT_STORAGE
    return resolve_storage(configured, project_root(config))


def _fail_under(config: pytest.Config) -> list[Gate]:
    """The --fail-under gates (the ini's when none is given), by key: the last one wins."""
    given = config.getoption("dotevals_fail_under")
    where, texts = (
        ("--fail-under", given)
        if given
        else ("dotevals_fail_under", config.getini("dotevals_fail_under"))
    )
    gates = {gate.key: gate for gate in (parse_gate(text, where) for text in texts)}
    return list(gates.values())


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "dotevals: an evaluation run by dotevals (@foreach)")
    _samples(config)
    try:  # a bad setting stops the session before any test runs
        config.stash[_GATES] = _fail_under(config)
        get_storage(_storage(config))
        parse_workers(_option(config, "workers"))
        parse_memory(_option(config, "worker_memory"))
        parse_timeout(_option(config, "timeout"))
        parse_executor(_option(config, "executor"))
    except DotevalsError as exc:
        raise pytest.UsageError(str(exc)) from None
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
        runner = Runner(
            experiment_name=_option(config, "experiment"),
            samples=_samples(config),
            concurrent=bool(_option(config, "concurrent")),
            storage=_storage(config),
            progress=not config.getoption("no_progress"),
            reporter=_PytestReporter(config),
            workers=_option(config, "workers"),
            worker_memory=_option(config, "worker_memory"),
            timeout=_option(config, "timeout"),
            executor=_option(config, "executor"),
        )
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
    shared = config.stash[_GATES]
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
    gates = config.stash[_GATES]
    missing = unmatched(gates, scores)
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
