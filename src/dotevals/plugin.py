"""The pytest plugin: options, collection of evaluations, deferred run, reporting.

Evaluation items (``@foreach`` functions, named as you like, in the files
pytest collects and in ``eval_*.py`` files; ``eval_*`` functions there are
collected too) are collected with the ordinary tests. Ordinary tests run first
through pytest's own loop; the evaluations then run through the
:class:`~dotevals.runners.Runner`, and each one is reported as a pytest item.

pytest loads this module in every session of every project where dotevals is
installed, so it imports nothing of dotevals' own until collection has found
an evaluation: then :mod:`dotevals._pytest_bridge.session` parses the options and runs
them. dotevals' modules are not rewritten by pytest's assertion rewriting: their
few asserts are internal checks, and rewriting them only costs time.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import argparse
import inspect
import os
import shlex
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from dotevals._pytest_bridge.session import EvaluationSession
    from dotevals.llm.fixture import FixtureOptions

#: Where ``get_evaluation`` lives: imported by ``@foreach``, so by every evaluation.
_EVALUATION_MODULE = "dotevals._declare.evaluation"
#: The session's evaluations, once collection has found one.
_EVALUATIONS: pytest.StashKey[EvaluationSession] = pytest.StashKey()
#: The plugin name of the ``llm`` fixture's namespace.
LLM_PLUGIN = "dotevals-llm"


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    """One flag set and one ini setting per row of the option table."""
    from dotevals._pytest_bridge.internals import stop_rewriting

    # dotevals' modules import as any library's do: their asserts are internal checks
    stop_rewriting(pluginmanager, "dotevals")
    from dotevals.options import OPTIONS

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
    config = pluginmanager.get_plugin("pytestconfig")
    if config is not None:  # the command line asks for workers: their fork server boots now
        given = _command_line(config)
        if given is not None and _asks_for_local_workers(config, given.get):
            _warm_workers()


def pytest_configure(config: pytest.Config) -> None:
    from dotevals.providers import register_fixtures

    config.addinivalue_line("markers", "dotevals: an evaluation run by dotevals (@foreach)")
    register_fixtures(config)
    if not config.pluginmanager.has_plugin(LLM_PLUGIN):
        config.pluginmanager.register(_llm_plugin(config), LLM_PLUGIN)
    runs = not (config.option.collectonly or getattr(config.option, "help", False))
    if runs and _asks_for_local_workers(config, config.getoption):
        _warm_workers()  # if the command line did not start it already


#: The flags :func:`_command_line` reads, by option.
_EARLY_FLAGS = {"--workers": "dotevals_workers", "--executor": "dotevals_executor"}


def _command_line(config: pytest.Config) -> dict[str, str] | None:
    """``--workers`` and ``--executor`` as the command line gives them (after
    ``PYTEST_ADDOPTS`` and the ini file's ``addopts``), read before pytest has parsed
    it; None when it asks for help or for collection only. :func:`pytest_configure`
    asks the parsed options again."""
    args = [
        *shlex.split(os.environ.get("PYTEST_ADDOPTS", "")),
        *config.getini("addopts"),
        *config.invocation_params.args,
    ]
    given = {}
    for at, arg in enumerate(args):
        if arg in ("-h", "--help", "--co", "--collect-only"):
            return None
        flag, equals, value = arg.partition("=")
        name = _EARLY_FLAGS.get(flag)
        if name is not None and (equals or at + 1 < len(args)):
            given[name] = value if equals else args[at + 1]
    return given


def _asks_for_local_workers(config: pytest.Config, option: Callable[[str], Any]) -> bool:
    """``option`` (else the ini file) asks for more than one local worker, or for
    ``auto`` (values are checked once an evaluation is collected)."""
    workers = str(option("dotevals_workers") or config.getini("dotevals_workers") or "").strip()
    if workers != "auto" and not (workers.isdigit() and int(workers) > 1):
        return False
    executor = option("dotevals_executor") or config.getini("dotevals_executor")
    return executor in (None, "", "local")


def _warm_workers() -> None:
    """Start the fork server local workers fork from, so that it imports what they
    need while pytest goes on (see :mod:`dotevals._engine.executors.fork_server`)."""
    from dotevals._engine.executors.fork_server import warm

    warm()


def _llm_plugin(config: pytest.Config) -> types.ModuleType:
    """The ``llm`` fixture, registered in every session; dotevals.llm and the openai SDK
    are imported only when a test or an evaluation asks for it.

    Its options are taken once an evaluation is collected (:func:`_take_llm_options`).
    Its function travels to worker processes by value (a closure), with those options:
    each worker builds a model of its own from them.
    """
    holder: list[FixtureOptions] = []

    def llm(request: pytest.FixtureRequest) -> Iterator[Any]:
        """The model of ``--model`` (an OpenAI-compatible provider): ``llm("prompt")``, or
        ``await llm("prompt")`` in an async evaluation, gives the answer's text."""
        if not holder:  # a test asks for it: no evaluation was collected
            _take_llm_options(request.config, None)
        model = holder[0].model()
        try:
            yield model
        finally:
            model.close()

    def describe() -> dict[str, Any] | None:
        """What an evaluation's metadata records of the fixture's model."""
        return holder[0].metadata() if holder else None

    llm.__dotevals_metadata__ = describe  # type: ignore[attr-defined]
    config.stash[_LLM_HOLDER] = holder
    namespace = types.ModuleType("dotevals_llm", "The llm fixture of dotevals.")
    namespace.llm = pytest.fixture(scope="session", name="llm")(llm)  # type: ignore[attr-defined]
    return namespace


#: Where the ``llm`` fixture keeps its options (a list of one, once taken).
_LLM_HOLDER: pytest.StashKey[list[FixtureOptions]] = pytest.StashKey()


def _take_llm_options(config: pytest.Config, options: Any) -> None:
    """Give the ``llm`` fixture the session's run options (parsed now when None)."""
    holder = config.stash.get(_LLM_HOLDER, None)
    if holder is None:
        return
    from dotevals.llm.fixture import FixtureOptions

    if options is None:
        from dotevals._pytest_bridge.session import run_options

        options = run_options(config)
    taken = FixtureOptions()
    taken.fill(options)
    holder[:] = [taken]


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    if file_path.suffix != ".py" or not file_path.name.startswith("eval_"):
        return None
    from dotevals._pytest_bridge.internals import is_python_file

    if parent.session.isinitpath(file_path) or is_python_file(file_path, parent.config):
        return None  # pytest collects those itself
    return pytest.Module.from_parent(parent, path=file_path)


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(
    collector: pytest.Module | pytest.Class, name: str, obj: object
) -> list[pytest.Function] | None:
    """``eval_*`` functions, and every ``@foreach`` function whatever its name; a
    ``@foreach`` function whose ``__test__`` is False is left out."""
    if not inspect.isfunction(obj):
        return None
    declared = _declared(obj)
    if declared and getattr(obj, "__test__", True) is False:
        return []  # not an item, whatever pytest would make of its name
    if name.startswith("eval_") or declared:
        from dotevals._pytest_bridge.internals import generate_functions

        return generate_functions(collector, name, obj)
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _is_evaluation(item):
            item.add_marker(pytest.mark.dotevals)


def pytest_collection_finish(session: pytest.Session) -> None:
    """The first evaluation collected brings in dotevals: its options are parsed here,
    so that a bad one stops the session before any test runs."""
    if any(_is_evaluation(item) for item in session.items):
        from dotevals._pytest_bridge.session import EvaluationSession

        evaluations = EvaluationSession(session.config)
        session.config.stash[_EVALUATIONS] = evaluations
        _take_llm_options(session.config, evaluations.options)


def _is_evaluation(item: pytest.Item) -> bool:
    """An item of a ``@foreach`` function."""
    return _declared(getattr(item, "obj", None))


def _declared(obj: object) -> bool:
    """``obj`` is a ``@foreach`` function: none can exist before its module is imported."""
    declared = sys.modules.get(_EVALUATION_MODULE)
    return declared is not None and declared.get_evaluation(obj) is not None


@pytest.hookimpl(tryfirst=True)
def pytest_fixture_setup(fixturedef: Any, request: Any) -> Any:
    if _EVALUATION_MODULE not in sys.modules:  # no evaluation can exist yet
        return None
    from dotevals._pytest_bridge.deferred import is_async_fixture, setup_async_fixture
    from dotevals._pytest_bridge.internals import item_of_request

    item = item_of_request(request)
    if item is None or not _is_evaluation(item):
        return None
    return setup_async_fixture(fixturedef, request) if is_async_fixture(fixturedef) else None


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
    config = session.config
    evaluations = config.stash.get(_EVALUATIONS, None)
    if evaluations is None or config.option.collectonly:
        return None
    if hasattr(config, "workerinput"):  # an xdist worker: xdist owns the loop
        return None
    if session.testsfailed and not config.option.continue_on_collection_errors:
        return None  # pytest's own loop reports the collection errors
    evaluations.run(session, [item for item in session.items if _is_evaluation(item)])
    if session.shouldfail:
        raise session.Failed(session.shouldfail)
    if session.shouldstop:
        raise session.Interrupted(session.shouldstop)
    return True


def pytest_terminal_summary(terminalreporter: Any) -> None:
    evaluations = terminalreporter.config.stash.get(_EVALUATIONS, None)
    if evaluations is not None:
        evaluations.summary(terminalreporter)


def pytest_sessionfinish(session: pytest.Session) -> None:
    evaluations = session.config.stash.get(_EVALUATIONS, None)
    if evaluations is not None:
        evaluations.finish(session)
