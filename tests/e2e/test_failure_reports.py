"""Row errors made visible: stored tracebacks, ``show --errors``, failed items, the summary.

Real pytest sessions (in-process where no worker pool is needed) write real
storage; the tests read it back through the storage API and the ``dotevals``
command."""

from __future__ import annotations

import json

import pytest
from cli_runs import cli_output
from pool_support import PID_CONFTEST, main_pid
from pytest_output import section_of
from pytest_runs import FAST
from stores import storage_url, stored_records

from dotevals.storage import get_storage

ERRORS_EVAL = """
from dotevals import Score, foreach


def parse(q):
    raise ValueError(f"cannot parse {q % 2}")


@foreach("q", [1, 2, 3, 4, 5])
def eval_mixed(q):
    if q == 1:
        return Score("ok", True)
    if q == 5:
        return {"ok": True}
    parse(q)


@foreach("q", [1, 2])
def eval_bool(q):
    return True
"""


def frame(path, function: str, code: str) -> str:
    """How a traceback shows the line of ``path`` holding ``code``, in ``function``."""
    number = path.read_text().splitlines().index(f"    {code}") + 1
    return f'File "{path}", line {number}, in {function}\n    {code}\n'


# Stored tracebacks ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["json", "sqlite"])
def test_a_row_error_is_stored_with_the_traceback_of_the_rows_own_code(pytester, kind):
    pytester.makepyfile(eval_errors=ERRORS_EVAL)
    url = storage_url(kind, pytester.path)
    pytester.runpytest("--storage", url, "--experiment", "e", "--no-progress")
    stored = stored_records(url, "e", "eval_errors.py::eval_mixed")
    assert [r.traceback is None for r in stored] == [True, False, False, False, True]
    traceback = stored[1].traceback
    assert traceback.startswith("Traceback (most recent call last):\n")
    assert traceback.rstrip().endswith("ValueError: cannot parse 0")
    source = pytester.path / "eval_errors.py"
    assert frame(source, "eval_mixed", "parse(q)") in traceback
    assert frame(source, "parse", 'raise ValueError(f"cannot parse {q % 2}")') in traceback
    # only the row's own frames: not the engine, not the retry library
    assert traceback.count('File "') == 2, traceback
    # a wrong return value is dotevals' own error: no frame of the row's code to show
    assert stored[4].error.startswith("TypeError: an evaluation must return a Score")


def test_a_retried_row_keeps_the_traceback_of_its_last_attempt_alone(pytester):
    pytester.makepyfile(
        eval_retried="""
import tenacity

from dotevals import ForEach, foreach

ATTEMPTS = []


@ForEach(retries=tenacity.Retrying(stop=tenacity.stop_after_attempt(3), reraise=True))(
    "q", [1]
)
def eval_retried(q):
    ATTEMPTS.append(q)
    raise ConnectionError(f"attempt {len(ATTEMPTS)}")
"""
    )
    url = storage_url("json", pytester.path)
    pytester.runpytest("--storage", url, "--experiment", "e", "--no-progress")
    (record,) = stored_records(url, "e", "eval_retried.py::eval_retried")
    assert record.error == "ConnectionError: attempt 3"
    assert "During handling" not in record.traceback
    assert "attempt 1" not in record.traceback and "attempt 2" not in record.traceback
    assert record.traceback.count('File "') == 1, record.traceback


def test_a_timed_out_row_shows_where_it_was_stopped(pytester):
    pytester.makepyfile(
        eval_slow="""
import time

from dotevals import ForEach


@ForEach(timeout=0.2)("q", [1])
def eval_slow(q):
    while True:
        time.sleep(0.01)
"""
    )
    url = storage_url("json", pytester.path)
    pytester.runpytest("--storage", url, "--experiment", "e", "--no-progress")
    (record,) = stored_records(url, "e", "eval_slow.py::eval_slow")
    assert record.error.startswith("RowTimeoutError")
    assert "in eval_slow\n    time.sleep(0.01)" in record.traceback
    assert "scoring.py" not in record.traceback  # the alarm that interrupted it


# dotevals show --errors -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["json", "sqlite"])
def test_show_errors_lists_errored_rows_by_type_with_tracebacks(pytester, capsys, kind):
    pytester.makepyfile(eval_errors=ERRORS_EVAL)
    url = storage_url(kind, pytester.path)
    pytester.runpytest("--storage", url, "--experiment", "e", "--no-progress")
    capsys.readouterr()
    out = cli_output(
        capsys,
        "show",
        "e",
        "--storage",
        url,
        "--errors",
        "--evaluation",
        "eval_errors.py::eval_mixed",
    )
    errors = out.split("Errors of 'eval_errors.py::eval_mixed' (4 of 5 rows)\n", 1)[1]
    value_errors, type_errors = errors.split("\nTypeError (1 row)\n")
    assert value_errors.startswith("\nValueError (3 rows)\n")
    assert [line for line in value_errors.splitlines() if line.startswith("  row")] == [
        '  row 1: {"q": 2}',
        '  row 2: {"q": 3}',
        '  row 3: {"q": 4}',
    ]
    assert value_errors.count("    Traceback (most recent call last):") == 3
    assert value_errors.count("in parse\n        raise ValueError") == 3
    assert "    ValueError: cannot parse 1" in value_errors
    assert type_errors.strip().splitlines() == [
        'row 4: {"q": 5}',
        "    TypeError: an evaluation must return a Score or a Result, got dict ({'ok': True})",
    ]
    assert "row 0" not in errors  # the row that succeeded

    data = json.loads(
        cli_output(capsys, "show", "e", "--storage", url, "--errors", "--format", "json")
    )
    mixed, boolean = data["evaluations"]
    assert [(g["type"], g["count"]) for g in mixed["errored_rows"]] == [
        ("ValueError", 3),
        ("TypeError", 1),
    ]
    first = mixed["errored_rows"][0]["records"][0]
    assert first["item_id"] == 1 and "in parse" in first["traceback"]
    assert [(g["type"], g["count"]) for g in boolean["errored_rows"]] == [("TypeError", 2)]


# The pytest item and the summary ----------------------------------------------------


def test_an_evaluation_whose_every_row_errored_fails_its_item(pytester):
    pytester.makepyfile(eval_errors=ERRORS_EVAL)
    url = storage_url("json", pytester.path)
    result = pytester.runpytest("--storage", url, "--experiment", "e", "--no-progress")
    result.assert_outcomes(passed=1, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    section = section_of(result, "eval_bool")
    assert section.strip().splitlines() == [
        "eval_errors.py::eval_bool: all 2 stored rows errored; the first (row 0):",
        "",
        "TypeError: an evaluation must return a Score or a Result, got bool (True)",
        "",
        "Every error, with its traceback: dotevals show e --errors --storage json://store",
    ]
    result.stdout.fnmatch_lines(["FAILED eval_errors.py::eval_bool - *"])
    # the rows are stored all the same, and run again on resume
    assert [r.item_id for r in stored_records(url, "e", "eval_errors.py::eval_bool")] == [0, 1]


def test_the_failure_of_an_ephemeral_run_names_the_experiment_it_made(pytester):
    pytester.makepyfile(eval_errors=ERRORS_EVAL)
    url = storage_url("json", pytester.path)
    result = pytester.runpytest("--storage", url, "--no-progress")
    result.assert_outcomes(passed=1, failed=1)
    (experiment,) = get_storage(url).experiments()
    assert experiment.ephemeral
    assert section_of(result, "eval_bool").strip().splitlines()[-1] == (
        f"Every error, with its traceback: dotevals show {experiment.name} --errors "
        "--storage json://store"  # as typed where pytest ran
    )


def test_the_failure_shows_the_first_errors_traceback(pytester):
    pytester.makepyfile(
        eval_broken="""
from dotevals import foreach


def model(q):
    return {"answer": q}["text"]


@foreach("q", [1, 2, 3])
def eval_broken(q):
    return model(q)
"""
    )
    result = pytester.runpytest("--storage", storage_url("sqlite", pytester.path), "--no-progress")
    result.assert_outcomes(failed=1)
    section = section_of(result, "eval_broken")
    assert section.startswith(
        "eval_broken.py::eval_broken: all 3 stored rows errored; the first (row 0):\n\n"
        "Traceback (most recent call last):\n"
    )
    assert 'in model\n    return {"answer": q}["text"]' in section
    assert "KeyError: 'text'\n\nEvery error, with its traceback: dotevals show " in section


@pytest.mark.parametrize("kind", ["json", "sqlite"])
def test_a_score_with_a_number_for_a_name_fails_its_rows_and_the_store_stays_readable(
    pytester, capsys, kind
):
    """Refused when made: each row errors with one line, the evaluation ends completed,
    and show, export and a rerun read the store."""
    pytester.makepyfile(
        eval_named="""
from dotevals import Score, foreach
from dotevals.metrics import accuracy


@foreach("q", [1, 2])
def eval_named(q):
    return Score(123, True, [accuracy()])
"""
    )
    url = storage_url(kind, pytester.path)
    args = ("--storage", url, "--experiment", "e", "--no-progress")
    result = pytester.runpytest(*args)
    result.assert_outcomes(failed=1)
    error = 'TypeError: Score\'s name must be a str such as "exact_match", got int 123'
    assert error in section_of(result, "eval_named").splitlines()
    assert "running" not in cli_output(capsys, "show", "e", "--storage", url)
    exported = cli_output(capsys, "export", "e", "--storage", url, "--format", "jsonl")
    assert [json.loads(line)["error"] for line in exported.splitlines()] == [error, error]
    pytester.runpytest(*args).assert_outcomes(failed=1)  # the rerun reads what is stored


def test_a_resumed_run_that_runs_no_row_keeps_the_verdict_of_what_is_stored(pytester):
    pytester.makepyfile(eval_errors=ERRORS_EVAL)
    url = storage_url("json", pytester.path)
    args = ("--storage", url, "--experiment", "e", "--no-progress", "-k", "eval_bool")
    pytester.runpytest(*args).assert_outcomes(failed=1)
    # no row runs, and every stored row errored: the same verdict as the run that stored them
    result = pytester.runpytest(*args, "--samples", "0")
    result.assert_outcomes(failed=1)
    assert "all 2 stored rows errored; the first (row 0):" in section_of(result, "eval_bool")


def test_the_summary_lists_the_errors_by_type_then_by_message(pytester):
    pytester.makepyfile(
        eval_frequent="""
from dotevals import Score, foreach


@foreach("q", range(14))
def eval_frequent(q):
    if q < 8:
        raise ValueError(f"no answer {q}")
    if q < 12:
        return True
    if q == 12:
        raise KeyError("text")
    return Score("ok", True)


@foreach("q", range(3))
def eval_clean(q):
    return Score("ok", True)
"""
    )
    url = storage_url("json", pytester.path)
    result = pytester.runpytest("--storage", url, "--experiment", "e", "--no-progress")
    result.assert_outcomes(passed=2)
    lines = result.outlines
    start = lines.index("eval_frequent.py::eval_frequent: 13 of 14 rows run this time errored")
    assert lines[start - 1] == ""
    # 8 ValueErrors with 8 messages do not hide the 4 TypeErrors: each type has its line
    assert lines[start + 1 : start + 9] == [
        "       8  ValueError",
        "               1  ValueError: no answer 0",
        "               1  ValueError: no answer 1",
        "               1  ValueError: no answer 2",
        "               5  (other ValueError messages)",
        "       4  TypeError: an evaluation must return a Score or a Result, got bool (True)",
        "       1  KeyError: 'text'",
        "every error, with its traceback: dotevals show e --errors --storage json://store",
    ]
    assert not any(line.startswith("eval_clean") and "errored" in line for line in lines)


def test_text_from_rows_reaches_the_terminal_escaped(pytester):
    """Error messages, tracebacks and score names holding escape sequences: the summary,
    the failure of an evaluation whose every row errored and the gate error show them
    escaped."""
    pytester.makepyfile(
        eval_evil="""
from dotevals import Result, Score, foreach
from dotevals.metrics import accuracy

EVIL = "\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m"


@foreach("q", range(3))
def eval_mixed(q):
    if q == 0:
        raise ValueError("model said " + EVIL)
    return Result(Score("s" + EVIL, True, [accuracy()]), error="bad " + EVIL if q == 1 else None)


@foreach("q", range(2))
def eval_all(q):
    raise ValueError("model said " + EVIL)
"""
    )
    url = storage_url("json", pytester.path)
    result = pytester.runpytest(
        "--storage", url, "--experiment", "e", "--no-progress", "--fail-under", "nothere=1"
    )
    output = result.stdout.str() + result.stderr.str()
    assert not {"\x1b", "\x07", "\x9b"} & set(output)
    shown = "\\u001b]0;pwned\\u0007\\u001b[2J\\u009b31m"
    assert f"ValueError: model said {shown}" in section_of(result, "eval_all").splitlines()
    assert f"       1  ValueError: model said {shown}" in result.outlines
    assert f"       1  bad {shown}" in result.outlines
    assert any(line.split()[4:5] == [f"s{shown}"] for line in result.outlines)
    assert f"(their scores: s{shown}); check the name" in output


def test_no_error_lines_when_no_row_errored(pytester):
    pytester.makepyfile(
        eval_clean="""
from dotevals import Score, foreach


@foreach("q", range(3))
def eval_clean(q):
    return Score("ok", True)
"""
    )
    result = pytester.runpytest("--storage", storage_url("json", pytester.path), "--no-progress")
    result.assert_outcomes(passed=1)
    assert "rows run this time errored" not in result.stdout.str()
    assert "--errors" not in result.stdout.str()


# Workers ----------------------------------------------------------------------------


def test_worker_rows_keep_their_traceback_and_fail_the_item(pytester):
    pytester.makeconftest(PID_CONFTEST)
    pytester.makepyfile(
        eval_remote="""
import os

from dotevals import foreach


def model(q):
    raise RuntimeError(f"model down in {os.getpid()}")


@foreach("q", range(6))
def eval_remote(q):
    return model(q)
"""
    )
    url = storage_url("sqlite", pytester.path)
    result = pytester.runpytest_subprocess(
        *FAST,
        "--storage",
        url,
        "--experiment",
        "e",
        "--workers",
        "2",
        "--no-progress",
        timeout=120,
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    result.assert_outcomes(failed=1)
    stored = stored_records(url, "e", "eval_remote.py::eval_remote")
    assert len(stored) == 6
    pids = {int(record.error.rsplit(" ", 1)[1]) for record in stored}
    assert main_pid(pytester) not in pids  # the rows ran in the workers
    source = pytester.path / "eval_remote.py"
    for record in stored:
        assert record.error.startswith("RuntimeError: model down in ")
        assert record.traceback.count('File "') == 2, record.traceback
        assert frame(source, "eval_remote", "return model(q)") in record.traceback
        assert record.traceback.rstrip().endswith(record.error)
    section = section_of(result, "eval_remote")
    assert frame(source, "model", 'raise RuntimeError(f"model down in {os.getpid()}")') in section
    assert "all 6 stored rows errored" in section


# The verdict holds: it counts the stored rows ------------------------------------------

#: 12 of 60 rows error, every time: the model cannot answer them.
STUBBORN_EVAL = """
from dotevals import Score, foreach


@foreach("q", range(60))
def eval_stubborn(q):
    if q % 5 == 0:
        raise ValueError(f"no answer to {q}")
    return Score("ok", True)


@foreach("q", range(60), fail_on_error=20)
def eval_own_bound(q):
    if q % 5 == 0:
        raise ValueError(f"no answer to {q}")
    return Score("ok", True)
"""


@pytest.mark.parametrize(
    ("options", "ini", "failed"),
    [
        ((), "", []),  # the default: only an evaluation whose every stored row errored
        (("--fail-on-error", "0.1"), "", ["eval_stubborn"]),  # 20 % > 10 %
        (("--fail-on-error", "12"), "", []),  # 12 errored rows are tolerated
        ((), "dotevals_fail_on_error = 11", ["eval_stubborn"]),
        (("--fail-on-error", "true"), "dotevals_fail_on_error = false", ["eval_stubborn"]),
    ],
)
def test_running_an_unchanged_experiment_again_gives_the_same_verdict(
    pytester, options, ini, failed
):
    pytester.makepyfile(eval_stubborn=STUBBORN_EVAL)
    pytester.makeini(f"[pytest]\n{ini}\n")
    args = ("--storage", storage_url("json", pytester.path), "--experiment", "nightly", *options)
    for attempt in range(3):  # the first run stores 60 rows, the others run the 12 again
        result = pytester.runpytest(*args, "--no-progress")
        result.assert_outcomes(passed=2 - len(failed), failed=len(failed))
        for name in failed:
            assert "12 of 60 stored rows errored" in section_of(result, name)
        if attempt:
            result.stdout.fnmatch_lines(
                [
                    "eval_stubborn.py::eval_stubborn: 12 errored rows ran again (not counted in "
                    "new): 12 errored again"
                ]
            )
