"""What a store holds against in real runs: a row that changes directory, a link
planted in the store, a delete or rename while a run holds the experiment, read-only
media."""

from __future__ import annotations

import pytest
from pytest_runs import run_pytest
from stores import KINDS, stored_records

CHDIR_EVAL = """
import os
import tempfile

from dotevals import Score, foreach
from dotevals.metrics import accuracy


@foreach("i", range(20))
def eval_chdir(i):
    if i == 4:
        os.chdir(tempfile.mkdtemp())
    return Score("ok", True, [accuracy()])
"""


@pytest.mark.parametrize("kind", KINDS)
def test_a_row_that_changes_directory_loses_no_row(pytester, kind):
    pytester.makepyfile(eval_chdir=CHDIR_EVAL)
    location = "results.db" if kind == "sqlite" else "results"
    result = run_pytest(pytester, "--storage", f"{kind}://{location}", "--experiment", "e")
    result.assert_outcomes(passed=1)
    stored = stored_records(f"{kind}://{pytester.path / location}", "e", "eval_chdir.py::eval_chdir")
    assert [r.item_id for r in stored] == list(range(20))


PLAIN_EVAL = """
from dotevals import Score, foreach
from dotevals.metrics import accuracy


@foreach("i", range(10))
def eval_plain(i):
    if i >= 5 and not __import__("os").environ.get("ALL"):
        raise ValueError("not yet")
    return Score("ok", True, [accuracy()])
"""


def test_a_records_file_linked_outside_the_store_is_refused_and_kept(pytester, monkeypatch):
    """The records of an experiment replaced by a link to a one-line file outside the
    store: the rerun refuses it with one line, and the file keeps its line."""
    pytester.makepyfile(eval_plain=PLAIN_EVAL)
    run_pytest(pytester, "--storage", "store", "--experiment", "e").assert_outcomes(passed=1)
    (records,) = (pytester.path / "store" / "e").glob("*.jsonl")
    token = pytester.path / "token"
    token.write_text("secret-token\n")
    records.unlink()
    records.symlink_to(token)
    monkeypatch.setenv("ALL", "1")
    result = run_pytest(pytester, "--storage", "store", "--experiment", "e")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [f"*refusing to write through {records}: it is a symbolic link, and dotevals never *"]
    )
    assert "Traceback" not in result.stdout.str()
    assert token.read_text() == "secret-token\n"


def test_a_damaged_experiment_file_is_a_usage_error_and_hides_no_other(pytester, monkeypatch):
    pytester.makepyfile(eval_plain=PLAIN_EVAL)
    monkeypatch.setenv("ALL", "1")
    for experiment in ("good", "bad"):
        result = run_pytest(pytester, "--storage", "store", "--experiment", experiment)
        result.assert_outcomes(passed=1)
    damaged = pytester.path / "store" / "bad" / "experiment.json"
    damaged.write_text("[1, 2]")
    result = run_pytest(pytester, "--storage", "store", "--experiment", "bad")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: {damaged} is not a valid experiment file (not a JSON object): fix it, *"]
    )
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result = run_pytest(pytester, "--storage", "store", "--experiment", "good")
    result.assert_outcomes(passed=1)
