"""The pytest plugin, through real pytest sessions (``pytester``).

Sessions run in-process (``runpytest``) unless plugin loading itself is under
test, where a subprocess gives pytest a fresh start (``runpytest_subprocess``).
Every run stores its results in an explicit storage under ``pytester.path``
and the tests read them back through ``dotevals.storage.get_storage``.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
import threading

import pytest
from pytest_output import section_of
from pytest_runs import FAST
from stores import storage_url

from dotevals.storage import get_storage

HEADER = """
import asyncio
import time
from pathlib import Path

import pytest

from dotevals import ForEach, Result, Score, foreach
from dotevals.concurrency import SlidingWindow
from dotevals.metrics import accuracy

LOG = Path(__file__).parent / "events.log"


def log(event):
    with LOG.open("a") as f:
        f.write(f"{event}\\n")


def em(value):
    return Score("em", value, [accuracy()])
"""

SIMPLE_EVAL = (
    HEADER
    + """
@foreach("question,answer", [("1+1", "2"), ("2+2", "5"), ("3+3", "6")])
def eval_math(question, answer):
    log(f"row {question}")
    return em(str(eval(question)) == answer)
"""
)

SIMPLE_TEST = (
    HEADER
    + """
def test_plain():
    log("test_plain")
"""
)


def events(pytester: pytest.Pytester) -> list[str]:
    path = pytester.path / "events.log"
    return path.read_text().splitlines() if path.exists() else []


def summary_section(result: pytest.RunResult) -> list[str]:
    lines = result.outlines
    starts = [i for i, line in enumerate(lines) if "dotevals summary" in line]
    assert len(starts) == 1, f"expected one dotevals summary:\n{result.stdout.str()}"
    section = []
    for line in lines[starts[0] + 1 :]:
        if line.startswith("="):
            break
        section.append(line)
    return section


def summary_row(result: pytest.RunResult, name: str) -> dict[str, str]:
    """The counts of one evaluation (``FILE::NAME`` or ``NAME``) in the summary table,
    and its line."""
    section = summary_section(result)
    header = next(line for line in section if line.split()[:1] == ["evaluation"])
    assert header.split()[:4] == ["evaluation", "rows", "new", "errors"]
    for line in section:
        tokens = line.split()
        if tokens and name in (tokens[0], tokens[0].rpartition("::")[2]):
            return {"rows": tokens[1], "new": tokens[2], "errors": tokens[3], "line": line}
    raise AssertionError(f"{name} not in the dotevals summary:\n" + "\n".join(section))


def timestamps(lines: list[str], name: str) -> tuple[float, float]:
    """First start and last end of the rows of evaluation ``name`` in the log."""
    starts = [float(line.split()[2]) for line in lines if line.startswith(f"start {name} ")]
    ends = [float(line.split()[2]) for line in lines if line.startswith(f"end {name} ")]
    assert starts and ends, lines
    return min(starts), max(ends)


# Plugin registration -------------------------------------------------------------


def test_entry_point_name_loads_the_plugin_without_autoload(pytester, monkeypatch):
    pytester.makepyfile(eval_simple=SIMPLE_EVAL)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    url = storage_url("json", pytester.path)

    without = pytester.runpytest_subprocess(*FAST, timeout=60)
    assert without.ret == pytest.ExitCode.NO_TESTS_COLLECTED  # eval_*.py not collected
    assert events(pytester) == []

    result = pytester.runpytest_subprocess(*FAST, "-p", "dotevals", "--storage", url, timeout=60)
    result.assert_outcomes(passed=1)
    assert summary_row(result, "eval_math")["rows"] == "3"
    assert events(pytester) == ["row 1+1", "row 2+2", "row 3+3"]


def test_explicit_plugin_option_with_autoload_is_harmless(pytester):
    pytester.makepyfile(eval_simple=SIMPLE_EVAL)
    url = storage_url("json", pytester.path)
    result = pytester.runpytest_subprocess(
        *FAST, "-p", "dotevals", "--storage", url, "-v", timeout=60
    )
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    summary_section(result)  # printed exactly once
    assert events(pytester) == ["row 1+1", "row 2+2", "row 3+3"]
    assert "dotevals-" in result.stdout.str()  # listed among the plugins


# Collection ----------------------------------------------------------------------

COLLECTION_EVAL = (
    HEADER
    + """
@foreach("question,answer", [("q", "a")])
def eval_decorated(question, answer):
    log("eval_decorated")
    return em(True)


@foreach("x", [1, 2])
def accuracy_check(x):
    log("accuracy_check")
    return em(True)


@foreach("x", [1])
def left_out(x):
    log("left_out")
    return em(True)


@foreach("x", [1])
def eval_left_out(x):
    log("eval_left_out")
    return em(True)


left_out.__test__ = eval_left_out.__test__ = False  # kept out, whatever their names


def eval_plain_function():
    log("eval_plain_function")


def helper():
    log("helper")
"""
)

COLLECTION_TEST = (
    HEADER
    + """
def test_ordinary():
    log("test_ordinary")


@foreach("x", [1])
def test_decorated_in_test_file(x):
    log("test_decorated_in_test_file")
    return em(True)


@foreach("x", [1])
def eval_in_test_file(x):
    log("eval_in_test_file")
    return em(True)
"""
)


@pytest.fixture
def collection_project(pytester):
    pytester.makepyfile(eval_things=COLLECTION_EVAL, test_things=COLLECTION_TEST)
    return pytester


def test_collect_only_lists_evaluations_and_tests(collection_project):
    result = collection_project.runpytest("--collect-only", "-q")
    assert result.ret == 0
    collected = sorted(line for line in result.outlines if "::" in line)
    # a @foreach function is collected whatever its name (accuracy_check), as
    # docs/pytest.md says; one whose __test__ is False is not
    assert collected == [
        "eval_things.py::accuracy_check",
        "eval_things.py::eval_decorated",
        "eval_things.py::eval_plain_function",
        "test_things.py::eval_in_test_file",
        "test_things.py::test_decorated_in_test_file",
        "test_things.py::test_ordinary",
    ]
    assert events(collection_project) == []


def test_mark_selects_only_evaluations(collection_project):
    url = storage_url("json", collection_project.path)
    result = collection_project.runpytest("-m", "dotevals", "--storage", url, "-v")
    result.assert_outcomes(passed=4, deselected=2)
    assert sorted(set(events(collection_project))) == [
        "accuracy_check",
        "eval_decorated",
        "eval_in_test_file",
        "test_decorated_in_test_file",
    ]
    storage = get_storage(url)
    (experiment,) = storage.experiments()
    assert sorted(storage.list_evaluations(experiment.name)) == [
        "eval_things.py::accuracy_check",
        "eval_things.py::eval_decorated",
        "test_things.py::eval_in_test_file",
        "test_things.py::test_decorated_in_test_file",
    ]


def test_not_mark_selects_only_tests(collection_project):
    url = storage_url("json", collection_project.path)
    result = collection_project.runpytest("-m", "not dotevals", "--storage", url)
    result.assert_outcomes(passed=2, deselected=4)
    assert sorted(events(collection_project)) == ["eval_plain_function", "test_ordinary"]
    assert "dotevals summary" not in result.stdout.str()
    assert not (collection_project.path / "store").exists()


def test_keyword_selection(collection_project):
    url = storage_url("json", collection_project.path)
    result = collection_project.runpytest("-k", "eval_decorated", "--storage", url)
    result.assert_outcomes(passed=1, deselected=5)
    assert events(collection_project) == ["eval_decorated"]
    assert summary_row(result, "eval_decorated")["rows"] == "1"


def test_dotevals_marker_is_registered(collection_project):
    result = collection_project.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.dotevals:*evaluation*"])
    result = collection_project.runpytest("--strict-markers", "--collect-only", "-q")
    assert result.ret == 0


# Options -------------------------------------------------------------------------

COUNT_EVAL = (
    HEADER
    + """
@foreach("x", range(6))
def eval_count(x):
    log(f"row {x}")
    return em(x % 2 == 0)
"""
)


def stored(url: str, experiment: str, evaluation: str = "eval_count.py::eval_count"):
    return get_storage(url).load_records(experiment, evaluation)


@pytest.mark.parametrize("kind", ["json", "sqlite"])
def test_experiment_and_storage_options(pytester, kind):
    pytester.makepyfile(eval_count=COUNT_EVAL)
    url = storage_url(kind, pytester.path)
    result = pytester.runpytest("--storage", url, "--experiment", "baseline")
    result.assert_outcomes(passed=1)
    assert "experiment: baseline" in result.stdout.str()
    storage = get_storage(url)
    assert [e.name for e in storage.experiments()] == ["baseline"]
    info = storage.evaluation_info("baseline", "eval_count.py::eval_count")
    assert info.status == "completed"
    assert info.metrics == {"em": {"accuracy": 0.5}}
    assert info.metadata["nodeid"] == "eval_count.py::eval_count"
    assert len(stored(url, "baseline")) == 6
    if kind == "sqlite":
        assert (pytester.path / "results.db").is_file()
    else:
        assert (pytester.path / "store").is_dir()


def test_default_storage_is_dotevals_directory_in_cwd(pytester):
    pytester.makepyfile(eval_count=COUNT_EVAL)
    result = pytester.runpytest("--experiment", "e")
    result.assert_outcomes(passed=1)
    assert len(stored(f"json://{pytester.path / '.dotevals'}", "e")) == 6


def test_samples_option(pytester):
    pytester.makepyfile(eval_count=COUNT_EVAL)
    url = storage_url("json", pytester.path)
    result = pytester.runpytest("--storage", url, "--experiment", "e", "--samples", "2")
    result.assert_outcomes(passed=1)
    assert [r.item_id for r in stored(url, "e")] == [0, 1]
    assert events(pytester) == ["row 0", "row 1"]


def test_no_experiment_makes_ephemeral_experiments(pytester):
    pytester.makepyfile(eval_count=COUNT_EVAL)
    url = storage_url("json", pytester.path)
    first = pytester.runpytest("--storage", url)
    first.assert_outcomes(passed=1)
    second = pytester.runpytest("--storage", url)
    second.assert_outcomes(passed=1)
    experiments = get_storage(url).experiments()
    assert len(experiments) == 2
    assert all(e.ephemeral for e in experiments)
    summaries = {first.stdout.str(), second.stdout.str()}
    for experiment in experiments:  # the summary names the experiment the run made
        shown = f"experiment: {experiment.name} (json://store)"  # from where pytest ran
        assert sum(shown in out for out in summaries) == 1


@pytest.mark.parametrize("ini_file", ["pytest.ini", "pyproject.toml"])
def test_ini_options(pytester, ini_file):
    pytester.makepyfile(eval_count=COUNT_EVAL)
    url = storage_url("sqlite", pytester.path)
    settings = {
        "dotevals_experiment": "from-ini",
        "dotevals_samples": "3",
        "dotevals_storage": url,
    }
    if ini_file == "pytest.ini":
        pytester.makeini("[pytest]\n" + "".join(f"{k} = {v}\n" for k, v in settings.items()))
    else:
        pytester.makepyprojecttoml(
            "[tool.pytest.ini_options]\n" + "".join(f'{k} = "{v}"\n' for k, v in settings.items())
        )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert "experiment: from-ini" in result.stdout.str()
    assert [r.item_id for r in stored(url, "from-ini")] == [0, 1, 2]


def test_command_line_wins_over_ini(pytester):
    pytester.makepyfile(eval_count=COUNT_EVAL)
    ini_url, cli_url = storage_url("sqlite", pytester.path), storage_url("json", pytester.path)
    pytester.makeini(
        f"""
        [pytest]
        dotevals_experiment = from-ini
        dotevals_samples = 3
        dotevals_storage = {ini_url}
        """
    )
    result = pytester.runpytest("--experiment", "from-cli", "--samples", "1", "--storage", cli_url)
    result.assert_outcomes(passed=1)
    assert [r.item_id for r in stored(cli_url, "from-cli")] == [0]
    assert not (pytester.path / "results.db").exists()


@pytest.mark.parametrize("value", ["-1", "lots", "1.5"])
def test_bad_samples_is_a_usage_error(pytester, value):
    pytester.makepyfile(eval_count=COUNT_EVAL)
    result = pytester.runpytest("--samples", value, "--storage", storage_url("json", pytester.path))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"samples must be a whole number >= 0, got '{value}'" in result.stderr.str()
    assert events(pytester) == []


def test_bad_ini_samples_is_a_usage_error(pytester):
    pytester.makepyfile(eval_count=COUNT_EVAL)
    pytester.makeini("[pytest]\ndotevals_samples = lots\n")
    result = pytester.runpytest("--storage", storage_url("json", pytester.path))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    expected = "dotevals_samples in the ini file: samples must be a whole number >= 0, got 'lots'"
    assert expected in result.stderr.str()
    assert events(pytester) == []


def test_unknown_storage_scheme_is_a_clear_error(pytester):
    pytester.makepyfile(eval_count=COUNT_EVAL)
    result = pytester.runpytest("--storage", "mongo://somewhere")
    assert result.ret != 0
    assert "unknown storage 'mongo://somewhere'" in result.stderr.str()
    assert "json://, sqlite://" in result.stderr.str()
    assert events(pytester) == []


def test_storage_without_location_is_a_clear_error(pytester):
    pytester.makepyfile(eval_count=COUNT_EVAL)
    result = pytester.runpytest("--storage", "sqlite://")
    assert result.ret != 0
    assert "has no location" in result.stderr.str()


def run_with_stderr_on_a_terminal(pytester, *args: str) -> str:
    """Run pytest with stderr on a pseudo-terminal (so progress bars may be drawn)."""
    pty = pytest.importorskip("pty")
    fcntl, termios = pytest.importorskip("fcntl"), pytest.importorskip("termios")
    master, slave = pty.openpty()
    # a terminal of 0 columns (the default of a new pty) gets empty bars
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        subprocess.run(
            [sys.executable, "-m", "pytest", *FAST, *args],
            cwd=pytester.path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=slave,
            timeout=60,
            check=False,
        )
    finally:
        os.close(slave)
        reader.join(timeout=5)
        os.close(master)
    return b"".join(chunks).decode("utf-8", "replace")


SLOW_EVAL = (
    HEADER
    + """
@foreach("x", range(5))
def eval_slow(x):
    time.sleep(0.05)
    return em(True)
"""
)


def test_progress_bars_and_no_progress(pytester):
    pytester.makepyfile(eval_slow=SLOW_EVAL)
    url = storage_url("json", pytester.path)
    with_bars = run_with_stderr_on_a_terminal(pytester, "--storage", url)
    assert "eval_slow:" in with_bars
    assert "5/5" in with_bars or "4/5" in with_bars
    assert "row/s" in with_bars
    without = run_with_stderr_on_a_terminal(pytester, "--storage", url, "--no-progress")
    assert "eval_slow" not in without
    assert len(get_storage(url).experiments()) == 2


# Deferred execution --------------------------------------------------------------


def test_tests_run_first_then_evaluations(pytester):
    # the evaluation file sorts (and is collected) before the test file
    pytester.makepyfile(eval_a=SIMPLE_EVAL, test_z=SIMPLE_TEST)
    url = storage_url("json", pytester.path)
    result = pytester.runpytest("--storage", url, "--experiment", "e", "-v")
    result.assert_outcomes(passed=2)
    assert events(pytester) == ["test_plain", "row 1+1", "row 2+2", "row 3+3"]
    result.stdout.fnmatch_lines(["*test_z.py::test_plain PASSED*", "*eval_a.py::eval_math PASSED*"])
    assert "fixture 'question' not found" not in result.stdout.str()
    info = get_storage(url).evaluation_info("e", "eval_a.py::eval_math")
    assert info.status == "completed"
    assert info.metrics == {"em": {"accuracy": pytest.approx(2 / 3)}}


def test_failing_ordinary_test_does_not_stop_evaluations(pytester):
    pytester.makepyfile(
        eval_a=SIMPLE_EVAL,
        test_z="""
        def test_fails():
            assert 1 == 2
        """,
    )
    result = pytester.runpytest("--storage", storage_url("json", pytester.path))
    result.assert_outcomes(passed=1, failed=1)
    assert events(pytester) == ["row 1+1", "row 2+2", "row 3+3"]


def test_exitfirst_stops_before_evaluations(pytester):
    pytester.makepyfile(
        eval_a=SIMPLE_EVAL,
        test_z="""
        def test_fails():
            assert 1 == 2
        """,
    )
    result = pytester.runpytest("--storage", storage_url("json", pytester.path), "-x")
    result.assert_outcomes(failed=1)
    assert events(pytester) == []


# Fixtures ------------------------------------------------------------------------

FIXTURES_CONFTEST = (
    HEADER
    + """
@pytest.fixture(scope="session")
def session_model():
    log("setup session_model")
    yield "S"
    log("teardown session_model")


@pytest.fixture(scope="module")
def module_fix(session_model):
    log("setup module_fix")
    yield "M" + session_model
    log("teardown module_fix")


@pytest.fixture
def plain():
    log("setup plain")
    return "P"


@pytest.fixture
def gen(plain, request):
    log(f"setup gen for {request.node.name}")
    yield plain + "G"
    log(f"teardown gen for {request.node.name}")


@pytest.fixture
async def async_value():
    await asyncio.sleep(0)
    log("setup async_value")
    return "AV"


@pytest.fixture
async def async_gen(async_value):
    await asyncio.sleep(0)
    log("setup async_gen")
    yield async_value + "+AG"
    await asyncio.sleep(0)
    log("teardown async_gen")
"""
)

FIXTURES_EVAL = (
    HEADER
    + """
@foreach("question,answer", [("q1", "a1"), ("q2", "a2")])
def eval_fixtures(
    question, answer, session_model, module_fix, gen, async_value, async_gen, request
):
    log(f"row {question} {session_model} {module_fix} {gen} {async_value} {async_gen} "
        f"{request.node.name}")
    return em(True)
"""
)

FIXTURES_TEST = (
    HEADER
    + """
def test_uses_session(session_model):
    log(f"test_uses_session {session_model}")
"""
)


def test_fixture_kinds_scopes_and_exact_sequence(pytester):
    pytester.makeconftest(FIXTURES_CONFTEST)
    pytester.makepyfile(eval_fixtures=FIXTURES_EVAL, test_session=FIXTURES_TEST)
    url = storage_url("json", pytester.path)
    result = pytester.runpytest("--storage", url, "--experiment", "e")
    result.assert_outcomes(passed=2)
    assert events(pytester) == [
        "setup session_model",
        "test_uses_session S",
        "setup module_fix",
        "setup plain",
        "setup gen for eval_fixtures",
        "setup async_value",
        "setup async_gen",
        "row q1 S MS PG AV AV+AG eval_fixtures",
        "row q2 S MS PG AV AV+AG eval_fixtures",
        "teardown async_gen",
        "teardown gen for eval_fixtures",
        "teardown module_fix",
        "teardown session_model",
    ]
    assert len(get_storage(url).load_records("e", "eval_fixtures.py::eval_fixtures")) == 2


def test_session_fixture_shared_by_tests_and_evaluations_is_created_once(pytester):
    pytester.makeconftest(FIXTURES_CONFTEST)
    pytester.makepyfile(
        eval_first=HEADER
        + """
@foreach("x", [1])
def eval_one(x, session_model):
    log("eval_one")
    return em(True)


@foreach("x", [1])
def eval_two(x, session_model):
    log("eval_two")
    return em(True)
""",
        test_session=FIXTURES_TEST,
        test_other=HEADER
        + """
def test_other(session_model):
    log("test_other")
""",
    )
    result = pytester.runpytest("--storage", storage_url("json", pytester.path))
    result.assert_outcomes(passed=4)
    log = events(pytester)
    assert log.count("setup session_model") == 1
    assert log.count("teardown session_model") == 1
    assert log[0] == "setup session_model"
    assert log[-1] == "teardown session_model"
    assert log.index("eval_one") > log.index("test_other")


def test_module_fixture_shared_by_test_and_evaluation_of_one_module(pytester):
    pytester.makeconftest(FIXTURES_CONFTEST)
    pytester.makepyfile(
        test_mixed=HEADER
        + """
@foreach("x", [1])
def eval_mixed(x, module_fix):
    log(f"eval_mixed {module_fix}")
    return em(True)


def test_mixed(module_fix):
    log(f"test_mixed {module_fix}")
"""
    )
    result = pytester.runpytest("--storage", storage_url("json", pytester.path))
    result.assert_outcomes(passed=2)
    assert events(pytester) == [
        "setup session_model",
        "setup module_fix",
        "test_mixed MS",
        "eval_mixed MS",
        "teardown module_fix",
        "teardown session_model",
    ]


PARAM_EVAL = (
    HEADER
    + """
@pytest.fixture
def model(request):
    log(f"setup model {request.param}")
    yield lambda x: f"{request.param}:{x}"
    log(f"teardown model {request.param}")


@pytest.mark.parametrize("model", ["small", "large"], indirect=True)
@foreach("x", [1, 2])
def eval_indirect(x, model):
    log(f"indirect {model(x)}")
    return em(model(x).startswith("small"))


@pytest.mark.parametrize("temperature", [0.0, 1.0])
@foreach("x", [1, 2, 3])
def eval_direct(x, temperature):
    log(f"direct {temperature} {x}")
    return em(temperature == 0.0)
"""
)


def test_parametrize_direct_and_indirect(pytester):
    pytester.makepyfile(eval_params=PARAM_EVAL)
    url = storage_url("json", pytester.path)
    result = pytester.runpytest("--storage", url, "--experiment", "e", "-v")
    result.assert_outcomes(passed=4)
    storage = get_storage(url)
    assert sorted(storage.list_evaluations("e")) == [
        "eval_params.py::eval_direct[0.0]",
        "eval_params.py::eval_direct[1.0]",
        "eval_params.py::eval_indirect[large]",
        "eval_params.py::eval_indirect[small]",
    ]
    summaries = {
        name: storage.evaluation_info("e", f"eval_params.py::{name}").metrics
        for name in ["eval_indirect[small]", "eval_indirect[large]"]
    }
    assert summaries == {
        "eval_indirect[small]": {"em": {"accuracy": 1.0}},
        "eval_indirect[large]": {"em": {"accuracy": 0.0}},
    }
    for temperature, accuracy in [("0.0", 1.0), ("1.0", 0.0)]:
        name = f"eval_params.py::eval_direct[{temperature}]"
        assert len(storage.load_records("e", name)) == 3
        assert storage.evaluation_info("e", name).metrics == {"em": {"accuracy": accuracy}}
    log = events(pytester)
    assert log[:4] == [
        "setup model small",
        "indirect small:1",
        "indirect small:2",
        "teardown model small",
    ]
    assert log[4:8] == [
        "setup model large",
        "indirect large:1",
        "indirect large:2",
        "teardown model large",
    ]
    assert sorted(log[8:]) == sorted(f"direct {t} {x}" for t in (0.0, 1.0) for x in (1, 2, 3))
    for name in ["eval_indirect[small]", "eval_indirect[large]", "eval_direct[0.0]"]:
        assert summary_row(result, name)["rows"] in {"2", "3"}


TEARDOWN_EVAL = (
    HEADER
    + """
@foreach("a,b", [(1,), (2, 2)])
def eval_bad_dataset(a, b, module_fix, gen, async_gen):
    log("eval_bad_dataset row")
    return em(True)


@pytest.fixture
def exploding(gen):
    log("setup exploding")
    raise RuntimeError("fixture exploded")


@foreach("x", [1])
def eval_bad_fixture(x, module_fix, exploding):
    log("eval_bad_fixture row")
    return em(True)
"""
)


def test_fixtures_are_torn_down_when_the_evaluation_fails(pytester):
    pytester.makeconftest(FIXTURES_CONFTEST)
    pytester.makepyfile(eval_teardown=TEARDOWN_EVAL)
    result = pytester.runpytest("--storage", storage_url("json", pytester.path))
    result.assert_outcomes(failed=1, errors=1)
    assert events(pytester) == [
        "setup session_model",
        "setup module_fix",
        "setup plain",
        "setup gen for eval_bad_dataset",
        "setup async_value",
        "setup async_gen",
        "teardown async_gen",
        "teardown gen for eval_bad_dataset",
        "setup plain",
        "setup gen for eval_bad_fixture",
        "setup exploding",
        "teardown gen for eval_bad_fixture",
        "teardown module_fix",
        "teardown session_model",
    ]


# Reporting -----------------------------------------------------------------------

REPORTING_EVAL = (
    HEADER
    + """
@pytest.fixture
def broken():
    raise RuntimeError("fixture exploded")


@foreach("q", [1, 2])
def eval_a_broken_fixture(q, broken):
    log("eval_a_broken_fixture")
    return em(True)


@foreach("q,a", [(1,), (2, 3)])
def eval_b_bad_first_row(q, a):
    log("eval_b_bad_first_row")
    return em(True)


@foreach("q", [1, 2, 3, 4])
def eval_c_row_errors(q):
    log(f"eval_c_row_errors {q}")
    if q == 2:
        raise ValueError("row boom")
    return em(q != 4)
"""
)


def test_failures_are_reported_and_the_other_evaluations_still_run(pytester):
    pytester.makepyfile(eval_reporting=REPORTING_EVAL)
    url = storage_url("json", pytester.path)
    result = pytester.runpytest("--storage", url, "--experiment", "e")
    result.assert_outcomes(passed=1, failed=1, errors=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert events(pytester) == [f"eval_c_row_errors {q}" for q in (1, 2, 3, 4)]
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of eval_a_broken_fixture*",
            "*RuntimeError: fixture exploded*",
        ]
    )
    # the dataset error is one line, without the engine's traceback
    section = section_of(result, "eval_b_bad_first_row")
    assert section.strip() == (
        "eval_b_bad_first_row: row 0 has 1 values but the columns are q,a (2); "
        "make every row match the column spec"
    )
    assert "Traceback" not in section and "engine/" not in section
    result.stdout.fnmatch_lines(["FAILED eval_reporting.py::eval_b_bad_first_row*"])
    assert "FAILED eval_reporting.py::eval_c_row_errors" not in result.stdout.str()

    row = summary_row(result, "eval_c_row_errors")
    assert (row["rows"], row["new"], row["errors"]) == ("4", "4", "1")
    assert "accuracy" in row["line"]
    assert re.search(r"\b0\.5\b|\b0\.5000\b", row["line"])
    summary_row(result, "eval_a_broken_fixture")  # listed although it did not run
    summary_row(result, "eval_b_bad_first_row")

    storage = get_storage(url)
    assert storage.evaluation_info("e", "eval_reporting.py::eval_b_bad_first_row").status == (
        "failed"
    )
    assert storage.evaluation_info("e", "eval_reporting.py::eval_c_row_errors").status == (
        "completed"
    )
    errors = [r.error for r in storage.load_records("e", "eval_reporting.py::eval_c_row_errors")]
    assert errors == [None, "ValueError: row boom", None, None]


def test_row_errors_alone_do_not_fail_the_session(pytester):
    pytester.makepyfile(
        eval_rows=HEADER
        + """
@foreach("q", [1, 2, 3])
def eval_rows(q):
    if q != 1:
        raise ValueError("row boom")
    return em(True)
"""
    )
    result = pytester.runpytest("--storage", storage_url("json", pytester.path))
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    row = summary_row(result, "eval_rows")
    assert (row["rows"], row["errors"]) == ("3", "2")


def test_summary_lists_every_evaluation_with_rows_errors_and_metrics(pytester):
    pytester.makepyfile(
        eval_many=HEADER
        + """
from dotevals.metrics import mean


@foreach("x", [1, 2, 3, 4])
def eval_first(x):
    return Result(Score("even", x % 2 == 0, [accuracy()]), Score("size", x, [mean()]))


@foreach("x", [1, 2])
def eval_second(x):
    return em(True)
"""
    )
    result = pytester.runpytest(
        "--storage", storage_url("json", pytester.path), "--experiment", "shown"
    )
    result.assert_outcomes(passed=2)
    section = "\n".join(summary_section(result))
    assert "experiment: shown" in section
    first, second = summary_row(result, "eval_first"), summary_row(result, "eval_second")
    assert (first["rows"], first["new"], first["errors"]) == ("4", "4", "0")
    assert (second["rows"], second["new"], second["errors"]) == ("2", "2", "0")
    for score, metric in [("even", "accuracy"), ("size", "mean"), ("em", "accuracy")]:
        assert re.search(rf"{score}\W+{metric}", section), section
    assert re.search(r"size\W+mean\W+2\.5", section), section


def test_the_summary_fits_the_terminal(pytester, monkeypatch):
    """At 80 columns (``COLUMNS``), long ``FILE::NAME`` labels give way to short names
    and every line of the dotevals summary fits; a wider terminal keeps the names."""
    suite = pytester.mkdir("evals")
    (suite / "eval_a_module_with_a_rather_long_name.py").write_text(
        HEADER
        + """
@foreach("x", [1, 2, 3])
def eval_arithmetic_with_a_long_name(x):
    if x == 3:
        raise ValueError("a message long enough to run past the edge of an 80 column terminal")
    return em(True)
"""
    )
    url = storage_url("json", pytester.path)
    args = ("evals", "--storage", url, "--experiment", "nightly-run", "--no-progress")
    monkeypatch.setenv("COLUMNS", "80")
    narrow = summary_section(pytester.runpytest(*args))
    assert narrow and max(map(len, narrow)) <= 80, "\n".join(narrow)
    # a command to copy is never cut: too long for the line, it goes on its own
    assert narrow[-2:] == [
        "every error, with its traceback:",
        "  dotevals show nightly-run --errors --storage json://store",
    ]
    assert narrow[3].startswith("eval_arithme…_a_long_name    3   3      1 em ")  # short, then cut
    assert "eval_arithmetic_with_a_long_name: 1 of 3 rows run this time errored" in narrow
    monkeypatch.setenv("COLUMNS", "200")
    wide = summary_section(pytester.runpytest(*args))
    label = "evals/eval_a_module_with_a_rather_long_name.py::eval_arithmetic_with_a_long_name"
    assert any(line.startswith(label + " ") for line in wide)


def test_print_in_an_evaluation_is_captured_as_a_tests_is(pytester):
    pytester.makepyfile(
        eval_printing=HEADER
        + """
@foreach("x", [1, 2])
def eval_printing(x):
    print(f"printed by row {x}")
    return True  # not a Score: every row errors, the evaluation fails
"""
    )
    result = pytester.runpytest("--storage", storage_url("json", pytester.path), "--no-progress")
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    # shown once, in the failure's captured output, as for a failed test
    assert output.count("printed by row 1") == 1
    result.stdout.fnmatch_lines(["*Captured stdout call*", "printed by row 1", "printed by row 2"])


# Concurrent async evaluations ----------------------------------------------------

CONCURRENT_EVAL = (
    HEADER
    + """
@pytest.fixture
def resource(request):
    value = object()
    log(f"setup resource {request.node.name} {id(value)}")
    yield value
    log(f"teardown resource {request.node.name} {id(value)}")


@ForEach(concurrency=SlidingWindow(1))("x", range(5))
async def eval_first(x, resource):
    log(f"start eval_first {time.time()} {id(resource)}")
    await asyncio.sleep(0.1)
    log(f"end eval_first {time.time()}")
    return em(True)


@ForEach(concurrency=SlidingWindow(1))("x", range(5))
async def eval_second(x, resource):
    log(f"start eval_second {time.time()} {id(resource)}")
    await asyncio.sleep(0.1)
    log(f"end eval_second {time.time()}")
    return em(True)
"""
)


def resources_seen(lines: list[str], name: str) -> set[str]:
    return {line.split()[3] for line in lines if line.startswith(f"start {name} ")}


@pytest.mark.parametrize("how", ["option", "ini"])
def test_concurrent_async_evaluations_overlap(pytester, how):
    pytester.makepyfile(eval_concurrent=CONCURRENT_EVAL)
    args = ["--storage", storage_url("json", pytester.path), "--experiment", "e"]
    if how == "option":
        args.append("--concurrent")
    else:
        pytester.makeini("[pytest]\ndotevals_concurrent = true\n")
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=2)
    lines = events(pytester)
    first_start, first_end = timestamps(lines, "eval_first")
    second_start, second_end = timestamps(lines, "eval_second")
    assert second_start < first_end and first_start < second_end, lines

    # each evaluation has its own function-scoped fixture, torn down once
    setups = [line.split() for line in lines if line.startswith("setup resource")]
    teardowns = [line.split() for line in lines if line.startswith("teardown resource")]
    assert sorted(s[2] for s in setups) == ["eval_first", "eval_second"]
    assert sorted(map(tuple, setups)) == sorted(("setup", *t[1:]) for t in teardowns)
    first_ids, second_ids = (
        resources_seen(lines, "eval_first"),
        resources_seen(lines, "eval_second"),
    )
    assert len(first_ids) == len(second_ids) == 1
    assert first_ids != second_ids
    assert {s[3] for s in setups if s[2] == "eval_first"} == first_ids
    assert {s[3] for s in setups if s[2] == "eval_second"} == second_ids
    # both set up before the rows start, torn down after they end
    last_setup = max(lines.index(" ".join(s)) for s in setups)
    first_row = min(i for i, line in enumerate(lines) if line.startswith("start "))
    assert last_setup < first_row


def test_async_evaluations_do_not_overlap_without_concurrent(pytester):
    pytester.makepyfile(eval_concurrent=CONCURRENT_EVAL)
    result = pytester.runpytest("--storage", storage_url("json", pytester.path))
    result.assert_outcomes(passed=2)
    lines = events(pytester)
    first_start, first_end = timestamps(lines, "eval_first")
    second_start, second_end = timestamps(lines, "eval_second")
    assert first_end <= second_start or second_end <= first_start, lines
    assert [line.split()[:3] for line in lines if "resource" in line] == [
        ["setup", "resource", "eval_first"],
        ["teardown", "resource", "eval_first"],
        ["setup", "resource", "eval_second"],
        ["teardown", "resource", "eval_second"],
    ]


# Resume --------------------------------------------------------------------------

RESUME_EVAL = (
    HEADER
    + """
FLAG = Path(__file__).parent / "flag"


@foreach("x", [1, 2, 3])
def eval_stable(x):
    log(f"stable {x}")
    return em(True)


@foreach("x", [1, 2, 3])
def eval_flaky(x):
    log(f"flaky {x}")
    if x == 2 and not FLAG.exists():
        FLAG.write_text("failed once")
        raise ValueError("first run fails")
    return em(True)
"""
)


def test_resume_through_pytest(pytester):
    pytester.makepyfile(eval_resume=RESUME_EVAL)
    args = ["--storage", storage_url("json", pytester.path), "--experiment", "again"]

    first = pytester.runpytest(*args)
    first.assert_outcomes(passed=2)
    assert summary_row(first, "eval_stable")["new"] == "3"
    flaky = summary_row(first, "eval_flaky")
    assert (flaky["rows"], flaky["new"], flaky["errors"]) == ("3", "3", "1")

    (pytester.path / "events.log").unlink()
    second = pytester.runpytest(*args)
    second.assert_outcomes(passed=2)
    stable = summary_row(second, "eval_stable")
    assert (stable["rows"], stable["new"], stable["errors"]) == ("3", "0", "0")
    # the errored row ran again: it is not new (scored for the first time), and a
    # note below the table counts it
    flaky = summary_row(second, "eval_flaky")
    assert (flaky["rows"], flaky["new"], flaky["errors"]) == ("3", "0", "0")
    assert events(pytester) == ["flaky 2"]
    second.stdout.fnmatch_lines(
        [
            "eval_resume.py::eval_flaky: 1 errored row ran again (not counted in new): "
            "0 errored again"
        ]
    )


def test_samples_extend_an_experiment_through_pytest(pytester):
    pytester.makepyfile(eval_count=COUNT_EVAL)
    url = storage_url("json", pytester.path)
    args = ["--storage", url, "--experiment", "steps", "--samples", "4"]
    pytester.runpytest(*args).assert_outcomes(passed=1)
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=1)
    row = summary_row(result, "eval_count")
    assert (row["rows"], row["new"]) == ("6", "2")
    assert events(pytester) == [f"row {x}" for x in range(6)]
    assert [r.item_id for r in stored(url, "steps")] == list(range(6))


def test_fixture_teardown_error_is_reported_and_results_kept(pytester):
    pytester.makepyfile(
        eval_teardown=HEADER
        + """
@pytest.fixture
def fragile():
    yield "f"
    raise RuntimeError("teardown exploded")


@foreach("x", [1, 2])
def eval_fragile(x, fragile):
    return em(True)
"""
    )
    url = storage_url("json", pytester.path)
    result = pytester.runpytest("--storage", url, "--experiment", "e")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*ERROR at teardown of eval_fragile*", "*RuntimeError: teardown exploded*"]
    )
    info = get_storage(url).evaluation_info("e", "eval_teardown.py::eval_fragile")
    assert info.status == "completed"
    assert info.metrics == {"em": {"accuracy": 1.0}}


def test_concurrent_evaluations_with_a_broken_fixture(pytester):
    pytester.makepyfile(
        eval_group=HEADER
        + """
@pytest.fixture
def resource(request):
    log(f"setup {request.node.name}")
    yield
    log(f"teardown {request.node.name}")


@pytest.fixture
def broken(resource):
    raise RuntimeError("fixture exploded")


@foreach("x", [1, 2])
async def eval_a(x, resource, broken):
    log("row eval_a")
    return em(True)


@foreach("x", [1, 2])
async def eval_b(x, resource):
    log("row eval_b")
    return em(True)


@foreach("x", [1, 2])
async def eval_c(x, resource):
    log("row eval_c")
    return em(True)
"""
    )
    result = pytester.runpytest("--storage", storage_url("json", pytester.path), "--concurrent")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at setup of eval_a*"])
    log = events(pytester)
    assert "row eval_a" not in log
    assert log.count("row eval_b") == log.count("row eval_c") == 2
    for name in ["eval_a", "eval_b", "eval_c"]:
        assert log.count(f"setup {name}") == log.count(f"teardown {name}") == 1
        assert log.index(f"setup {name}") < log.index(f"teardown {name}")


# Regressions: bugs found while writing these tests ------------------------------


def test_skip_marks_apply_to_evaluations(pytester):
    """The Runner used to bypass pytest_runtest_setup, where skip marks are evaluated."""
    pytester.makepyfile(
        eval_skip=HEADER
        + """
@pytest.mark.skip(reason="not today")
@foreach("x", [1])
def eval_skipped(x):
    log("eval_skipped")
    return em(True)


@pytest.mark.skipif(True, reason="never")
@foreach("x", [1])
def eval_skipif(x):
    log("eval_skipif")
    return em(True)


@foreach("x", [1])
def eval_runs(x):
    log("eval_runs")
    return em(True)
"""
    )
    result = pytester.runpytest("--storage", storage_url("json", pytester.path), "-rs")
    result.assert_outcomes(passed=1, skipped=2)
    assert events(pytester) == ["eval_runs"]
    result.stdout.fnmatch_lines(["*SKIPPED*not today*", "*SKIPPED*never*"])


def test_exitfirst_stops_after_a_failed_evaluation(pytester):
    """-x used to be ignored between evaluations."""
    pytester.makepyfile(
        eval_x=HEADER
        + """
@foreach("a,b", [(1,)])
def eval_a_fails(a, b):
    return em(True)


@foreach("x", [1])
def eval_b_later(x):
    log("eval_b_later")
    return em(True)
"""
    )
    result = pytester.runpytest("--storage", storage_url("json", pytester.path), "-x")
    result.assert_outcomes(failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert events(pytester) == []


def test_evaluation_method_in_a_test_class(pytester):
    """``self`` used to be taken for a fixture: INTERNALERROR KeyError: 'self'."""
    pytester.makepyfile(
        test_class=HEADER
        + """
class TestEvals:
    factor = 10

    @foreach("x", [1, 2])
    def test_method(self, x):
        log(f"row {x * self.factor}")
        return em(True)
"""
    )
    url = storage_url("json", pytester.path)
    result = pytester.runpytest("--storage", url, "--experiment", "e")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1)
    assert events(pytester) == ["row 10", "row 20"]
    records = get_storage(url).load_records("e", "test_class.py::TestEvals::test_method")
    assert len(records) == 2


def test_generator_dataset_with_parametrize_fails_the_second_parameter_set(pytester):
    """The second parameter set used to pass silently with 0 rows."""
    pytester.makepyfile(
        eval_gen=HEADER
        + """
@pytest.mark.parametrize("model", ["a", "b"])
@foreach("x", (i for i in range(3)))
def eval_gen(x, model):
    log(f"{model} {x}")
    return em(True)
"""
    )
    result = pytester.runpytest("--storage", storage_url("json", pytester.path))
    result.assert_outcomes(passed=1, failed=1)
    assert events(pytester) == ["a 0", "a 1", "a 2"]
    assert "its dataset is a generator that an earlier run" in section_of(result, "eval_gen[b]")


SIGNAL_EVALS = (
    HEADER
    + """
import signal


@pytest.fixture(scope="session")
def on_usr1():
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: None)
    yield
    signal.signal(signal.SIGUSR1, previous)


def installed():
    return signal.getsignal(signal.SIGUSR1) not in (signal.SIG_DFL, None)


@foreach("n", range(3))
def eval_sync(n, on_usr1):
    return em(installed())


@foreach("n", range(3))
async def eval_async(n, on_usr1):
    return em(installed())
"""
)


@pytest.mark.parametrize("workers", [(), ("--workers", "2")], ids=["inline", "workers"])
def test_a_fixture_may_install_a_signal_handler(pytester, workers):
    """Fixtures are set up on the main thread, as pytest sets a test's up."""
    pytester.makepyfile(eval_signal=SIGNAL_EVALS)
    url = storage_url("json", pytester.path)
    result = pytester.runpytest(
        *FAST, "--no-progress", *workers, "--storage", url, "--experiment", "s"
    )
    result.assert_outcomes(passed=2)
    for name in ("eval_sync", "eval_async"):
        records = get_storage(url).load_records("s", f"eval_signal.py::{name}")
        assert [r.result.scores[0].value for r in records] == [True, True, True]
