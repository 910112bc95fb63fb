"""What a store holds against in real runs: a row that changes directory, a link
planted in the store, a delete or rename while a run holds the experiment, read-only
media."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runs import run_cli
from pytest_runs import run_pytest
from stores import KINDS, opened, storage_url, stored_records

from dotevals.errors import ExperimentInUseError
from dotevals.models import Record, Result
from dotevals.storage import EvaluationInfo, get_storage
from dotevals.storage.writer import ExperimentStore

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
    stored = stored_records(
        f"{kind}://{pytester.path / location}", "e", "eval_chdir.py::eval_chdir"
    )
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


HOLDER = """
import sys

from dotevals.storage.writer import ExperimentStore

store = ExperimentStore(sys.argv[1], "nightly")
store.lock()  # what a run does before its first row
print("locked", flush=True)
sys.stdin.read()  # until the test closes it
store.unlock()
"""


@pytest.mark.parametrize("kind", KINDS)
def test_delete_and_rename_refuse_while_a_run_holds_the_experiment(tmp_path, capsys, kind):
    url = storage_url(kind, tmp_path)
    storage = get_storage(url)
    storage.create_experiment("nightly")
    storage.save_evaluation("nightly", EvaluationInfo("ev"))
    storage.add_records("nightly", "ev", [Record(Result(), 0, {})])
    storage.close()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "locked\n"
        with pytest.raises(ExperimentInUseError) as second_run:
            ExperimentStore(url, "nightly").lock()
        message = f"error: {second_run.value}\n"
        assert f"is in use by process {holder.pid}" in message
        assert run_cli(capsys, "delete", "nightly", "--storage", url) == (1, "", message)
        assert run_cli(capsys, "rename", "nightly", "new", "--storage", url) == (1, "", message)
        assert [r.item_id for r in stored_records(url, "nightly", "ev")] == [0]
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert holder.returncode == 0
    code, _, err = run_cli(capsys, "rename", "nightly", "new", "--storage", url)
    assert (code, err) == (0, "")
    assert [r.item_id for r in stored_records(url, "new", "ev")] == [0]
    assert _locks_left(tmp_path, kind) == []  # the rename released what it took
    code, _, err = run_cli(capsys, "delete", "new", "--storage", url)
    assert (code, err) == (0, "")
    with opened(url) as storage:
        assert storage.list_experiments() == []


def _locks_left(directory: Path, kind: str) -> list:
    if kind == "json":
        return list(directory.glob("store/*/run.lock"))
    with contextlib.closing(sqlite3.connect(directory / "results.db")) as db:
        return db.execute("SELECT * FROM locks").fetchall()


def _read_only(directory: Path) -> list[str] | None:
    """A command prefix that runs a command with ``directory`` mounted read-only (a
    mount namespace of its own, as a user may make one with ``unshare``), or None
    where this system cannot."""
    mount = 'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" && exec "$@"'
    prefix = ["unshare", "-rm", "sh", "-c", mount, str(directory)]
    try:
        probe = subprocess.run([*prefix, "touch", str(directory / "probe")], capture_output=True)
    except OSError:
        return None
    if probe.returncode == 0 or b"Read-only file system" not in probe.stderr:
        return None
    return prefix


@pytest.mark.parametrize("kind", KINDS)
def test_a_store_on_read_only_media_can_be_read(tmp_path, kind):
    media = tmp_path / "media"
    url = storage_url(kind, media)
    storage = get_storage(url)
    for name in ("a", "b"):
        storage.create_experiment(name)
        storage.save_evaluation(name, EvaluationInfo("ev", status="completed"))
        storage.add_records(name, "ev", [Record(Result(), 0, {"q": 1})])
    storage.close()
    read_only = _read_only(media)
    if read_only is None:
        pytest.skip("no way to mount a folder read-only here (unshare)")
    load = "import sys, dotevals; print(len(dotevals.load('a', storage=sys.argv[1])))"
    for argv in (
        ["-m", "dotevals.cli", "list"],
        ["-m", "dotevals.cli", "show", "a", "--full"],
        ["-m", "dotevals.cli", "compare", "a", "b"],
        ["-m", "dotevals.cli", "export", "a"],
        ["-m", "dotevals.cli", "report", "a", "-o", str(tmp_path / "report.html")],
        ["-c", load],
    ):
        storage_argv = [url] if argv[0] == "-c" else ["--storage", url]
        done = subprocess.run(
            [*read_only, sys.executable, *argv, *storage_argv], capture_output=True, text=True
        )
        assert (done.returncode, done.stderr) == (0, ""), argv
