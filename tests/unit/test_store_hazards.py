"""What a store holds against: a row that changes directory, links planted in it,
hand-damaged bookkeeping, two 0.23 files of one evaluation. Real files and databases."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from cli_runs import run_cli
from stores import KINDS, storage_url, stored_records

import dotevals
from dotevals.errors import StorageError
from dotevals.metrics import accuracy
from dotevals.models import Record, Result, Score
from dotevals.storage import EvaluationInfo, get_storage
from dotevals.storage.base import LockOwner
from dotevals.storage.writer import ExperimentStore


def record(item_id: int) -> Record:
    return Record(Result(Score("em", True, [accuracy()])), item_id, {"q": f"q{item_id}"})


# A row's os.chdir ----------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_a_relative_storage_path_is_fixed_when_the_storage_is_made(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path)
    url = storage_url(kind, Path("results"))  # relative
    storage = get_storage(url)
    os.chdir("elsewhere")  # as a row may do, before anything is written
    storage.create_experiment("exp")
    storage.save_evaluation("exp", EvaluationInfo("ev"))
    storage.add_records("exp", "ev", [record(0), record(1)])
    storage.close()
    assert list((tmp_path / "elsewhere").iterdir()) == []
    stored = stored_records(storage_url(kind, tmp_path / "results"), "exp", "ev")
    assert [r.item_id for r in stored] == [0, 1]


# Symbolic links in a json store --------------------------------------------
def _stored_experiment(tmp_path: Path) -> tuple[str, Path]:
    """A json store holding experiment "exp" with evaluation "ev": its URL and folder."""
    url = storage_url("json", tmp_path)
    storage = get_storage(url)
    storage.create_experiment("exp")
    storage.save_evaluation("exp", EvaluationInfo("ev"))
    storage.add_records("exp", "ev", [record(0)])
    storage.close()
    return url, tmp_path / "store" / "exp"


WRITES = {
    "records": ("ev.jsonl", lambda s: s.add_records("exp", "ev", [record(1)])),
    "records, at the start of a run": (
        "ev.jsonl",
        lambda s: s.save_evaluation("exp", EvaluationInfo("ev")),
    ),
    "info": ("ev.info.json", lambda s: s.save_evaluation("exp", EvaluationInfo("ev"))),
    "records of a new evaluation": (
        "ev2.jsonl",
        lambda s: s.add_records("exp", "ev2", [record(0)]),
    ),
    "run lock": ("run.lock", lambda s: s.lock_experiment("exp", LockOwner.me())),
    "experiment folder": ("", lambda s: s.add_records("exp", "ev", [record(1)])),
}


@pytest.mark.parametrize("case", list(WRITES))
def test_a_symlink_in_the_store_is_never_written_through(tmp_path: Path, case: str):
    """A file (or the experiment's folder) replaced by a link to a file outside the store:
    the write is refused with one line, and the file outside is untouched."""
    url, folder = _stored_experiment(tmp_path)
    name, write = WRITES[case]
    outside = tmp_path / "outside"
    if name:
        link = folder / name
        # a file of another program; an info file must read well to be written
        outside.write_bytes(link.read_bytes() if name.endswith(".info.json") else b"token\n")
        link.unlink(missing_ok=True)
    else:  # the folder moves out of the store, a link takes its place
        link = folder
        folder.rename(outside)
    link.symlink_to(outside)
    before = {p: p.read_bytes() for p in [outside, *outside.glob("*")] if p.is_file()}
    storage = get_storage(url)
    with pytest.raises(StorageError) as error:
        write(storage)
    storage.close()
    assert str(error.value) == (
        f"refusing to write through {link}: it is a symbolic link, and dotevals never "
        "writes into a store through one; replace it with a regular file or folder"
    )
    assert {p: p.read_bytes() for p in [outside, *outside.glob("*")] if p.is_file()} == before


def test_the_store_folder_itself_may_be_a_link(tmp_path: Path):
    (tmp_path / "real").mkdir()
    (tmp_path / "store").symlink_to(tmp_path / "real")
    url, _ = _stored_experiment(tmp_path)
    assert [r.item_id for r in stored_records(url, "exp", "ev")] == [0]
    assert (tmp_path / "real" / "exp" / "ev.jsonl").is_file()


# Damaged bookkeeping -------------------------------------------------------
def _two_experiments(url: str) -> None:
    """Experiments "good" and "bad" with an evaluation "ev" each."""
    storage = get_storage(url)
    for name in ("good", "bad"):
        storage.create_experiment(name)
        storage.save_evaluation(name, EvaluationInfo("ev", status="completed"))
        storage.add_records(name, "ev", [record(0)])
    storage.close()


def _damaged(
    tmp_path: Path, name: str, what: str, damage: tuple[dict | list, str]
) -> tuple[str, Path, str]:
    """A json store of ``_two_experiments`` whose file ``name`` (the bookkeeping of an
    ``what``) in experiment "bad" has the change of ``damage``: the store's URL, the
    file, and the line that names the damage (its reason is the second of ``damage``)."""
    url = storage_url("json", tmp_path)
    _two_experiments(url)
    path = tmp_path / "store" / "bad" / name
    change, reason = damage
    data = json.loads(path.read_text())
    path.write_text(json.dumps(change if isinstance(change, list) else {**data, **change}))
    line = (
        f"{path} is not a valid {what} file ({reason}): fix it, or delete it "
        f"(the next run of the {what} writes it again)"
    )
    return url, path, line


EXPERIMENT_DAMAGE = {
    "name is a number": ({"name": 5}, "name 5 is not a name"),
    "created_at is not a time": (
        {"created_at": "yesterday"},
        "created_at 'yesterday' is not a time",
    ),
    "created_at is NaN": ({"created_at": float("nan")}, "created_at nan is not a time"),
    "a list": ([1, 2], "not a JSON object"),
    "ephemeral is text": ({"ephemeral": "no"}, "ephemeral 'no' is not true or false"),
    "format is text": ({"format": "two"}, "format 'two' is not a format"),
    "format is 0": ({"format": 0}, "format 0 is not a format"),
}


@pytest.mark.parametrize("damage", list(EXPERIMENT_DAMAGE))
def test_a_damaged_experiment_file_is_one_line_and_hides_no_other(tmp_path, capsys, damage):
    url, _, line = _damaged(tmp_path, "experiment.json", "experiment", EXPERIMENT_DAMAGE[damage])
    code, out, err = run_cli(capsys, "list", "--storage", url)
    assert code == 0 and "good" in out and "bad" not in out
    assert err == f"warning: {line}; left out of this list\n"
    assert run_cli(capsys, "show", "bad", "--storage", url) == (1, "", f"error: {line}\n")
    code, out, err = run_cli(capsys, "show", "good", "--storage", url)
    assert (code, err) == (0, "") and "completed" in out


INFO_DAMAGE = {
    "summary is text": ({"summary": "x"}, "summary is not {score: {metric: value}}"),
    "status is a number": (
        {"status": 3},
        "status 3 is not one of running, completed, failed, interrupted",
    ),
    "started_at is not a time": (
        {"started_at": "yesterday"},
        "started_at 'yesterday' is not a time",
    ),
    "ended_at is beyond dates": ({"ended_at": 1e300}, "ended_at 1e+300 is not a time"),
    "metadata is a list": ({"metadata": []}, "metadata is not an object"),
    "position is text": ({"position": "first"}, "position 'first' is not a whole number"),
    "name is missing": ({"name": None}, "name None is not text"),
    "a list": ([1], "not a JSON object"),
    "reduced is flat": (
        {"reduced": {"mean": 0.5}},
        "reduced is not {reducer: {score: {metric: {value, stderr, low, high, method}}}}",
    ),
}


@pytest.mark.parametrize("damage", list(INFO_DAMAGE))
def test_a_damaged_evaluation_file_is_one_line(tmp_path, capsys, damage):
    """`dotevals show` leaves the evaluation out with one line naming the file; a run of
    it stops with that line; the other experiment is shown as before."""
    url, path, line = _damaged(tmp_path, "ev.info.json", "evaluation", INFO_DAMAGE[damage])
    code, out, err = run_cli(capsys, "show", "bad", "--storage", url)
    assert code == 0 and "No evaluations yet." in out
    assert err == f"warning: {line}; left out of this list\n"
    with pytest.raises(StorageError) as error:
        ExperimentStore(url, "bad").start_evaluation("ev")
    assert str(error.value) == line
    code, out, err = run_cli(capsys, "show", "good", "--storage", url)
    assert (code, err) == (0, "") and "completed" in out
    path.unlink()  # as the line says: the next run writes it again, and resumes
    writer = ExperimentStore(url, "bad").start_evaluation("ev")
    assert writer.completed == {0}
    writer.finish("completed")


def test_a_deleted_experiment_file_is_written_again_by_the_next_run(tmp_path):
    url = storage_url("json", tmp_path)
    _two_experiments(url)
    (tmp_path / "store" / "bad" / "experiment.json").unlink()
    writer = ExperimentStore(url, "bad").start_evaluation("ev")
    assert writer.completed == {0}
    writer.finish("completed")
    assert (tmp_path / "store" / "bad" / "experiment.json").is_file()


SQLITE_DAMAGE = {
    "created_at is not a time": (
        "UPDATE experiments SET created_at = 'yesterday' WHERE name = 'bad'",
        "the row of experiment 'bad' in table experiments is not valid "
        "(created_at 'yesterday' is not a time): fix that row",
    ),
    "ephemeral is text": (
        "UPDATE experiments SET ephemeral = 'x' WHERE name = 'bad'",
        "the row of experiment 'bad' in table experiments is not valid "
        "(ephemeral 'x' is not true or false): fix that row",
    ),
    "info is a list": (
        "UPDATE evaluations SET info = '[1]' WHERE experiment = 'bad'",
        "the info of evaluation 'ev' of experiment 'bad' in table evaluations is not valid "
        "(not a JSON object): fix that row, or delete it (the next run of the evaluation "
        "writes it again)",
    ),
    "info has a summary of text": (
        """UPDATE evaluations SET info = '{"name": "ev", "summary": "x"}'
        WHERE experiment = 'bad'""",
        "the info of evaluation 'ev' of experiment 'bad' in table evaluations is not valid "
        "(summary is not {score: {metric: value}}): fix that row, or delete it (the next run "
        "of the evaluation writes it again)",
    ),
    "info is a number": (
        "UPDATE evaluations SET info = 5 WHERE experiment = 'bad'",
        "the info of evaluation 'ev' of experiment 'bad' in table evaluations is not valid "
        "(not a JSON object): fix that row, or delete it (the next run of the evaluation "
        "writes it again)",
    ),
}


@pytest.mark.parametrize("damage", list(SQLITE_DAMAGE))
def test_a_damaged_row_of_sqlite_bookkeeping_is_one_line(tmp_path, capsys, damage):
    url = storage_url("sqlite", tmp_path)
    _two_experiments(url)
    update, reason = SQLITE_DAMAGE[damage]
    with sqlite3.connect(tmp_path / "results.db") as db:
        db.execute(update)
    db.close()
    line = f"{tmp_path / 'results.db'}: {reason}"
    code, out, err = run_cli(capsys, "list", "--storage", url)
    assert code == 0 and "good" in out
    if "experiments" in reason:
        assert "bad" not in out and err == f"warning: {line}; left out of this list\n"
    assert run_cli(capsys, "show", "bad", "--storage", url) == (1, "", f"error: {line}\n")
    code, out, err = run_cli(capsys, "show", "good", "--storage", url)
    assert (code, err) == (0, "") and "completed" in out


# Files written by dotevals 0.23 ------------------------------------------------------
STORE_023 = Path(__file__).parents[1] / "data" / "dotevals-0.23"
MATH_023 = "eval_basic_math[None-None]"


def _store_023(tmp_path: Path) -> tuple[str, Path]:
    shutil.copytree(STORE_023, tmp_path / "store")
    return f"json://{tmp_path / 'store'}", tmp_path / "store" / "baseline"


def _first_line(path: Path, change: dict) -> None:
    header, rest = path.read_text().split("\n", 1)
    path.write_text(json.dumps({**json.loads(header), **change}) + "\n" + rest)


def test_a_damaged_first_line_of_a_023_file_is_one_line(tmp_path, capsys):
    url, folder = _store_023(tmp_path)
    path = folder / f"{MATH_023}.jsonl"
    _first_line(path, {"started_at": "yesterday"})
    line = (
        f"{path}, line 1, is not a valid first line of a dotevals 0.23 file "
        "(started_at 'yesterday' is not a time): fix that line to read this evaluation"
    )
    code, out, err = run_cli(capsys, "list", "--storage", url)
    assert code == 0 and "baseline" in out and "partial" in out
    assert err == f"warning: {line}; left out of this list\n"  # counting its evaluations
    code, out, err = run_cli(capsys, "show", "baseline", "--storage", url)
    assert code == 0 and "eval_by_model[None-None-small]" in out and MATH_023 not in out
    assert err == f"warning: {line}; left out of this list\n"
    with pytest.raises(StorageError) as error:
        get_storage(url).evaluation_info("baseline", MATH_023)
    assert str(error.value) == line


def test_two_023_files_of_one_evaluation_are_named_and_neither_is_read(tmp_path, capsys):
    """A copy of a 0.23 file beside it: neither copy is shown as the evaluation, one line
    names both files, and a run of the evaluation stops with that line."""
    url, folder = _store_023(tmp_path)
    original = folder / f"{MATH_023}.jsonl"
    copy = folder / "eval_basic_math copy.jsonl"
    shutil.copy(original, copy)
    line = (
        f"{copy} and {original} both hold the evaluation {MATH_023!r} (files of dotevals "
        f"0.23, one copied by hand?): move one of them out of {folder} to read or run it"
    )
    code, out, err = run_cli(capsys, "show", "baseline", "--storage", url)
    assert code == 0 and "eval_by_model[None-None-small]" in out and MATH_023 not in out
    assert err == f"warning: {line}; left out of this list\n"
    with pytest.raises(StorageError) as error:
        ExperimentStore(url, "baseline").start_evaluation(MATH_023)
    assert str(error.value) == line
    copy.unlink()  # one file again: read as before
    code, out, err = run_cli(capsys, "show", "baseline", "--storage", url)
    assert (code, err) == (0, "") and MATH_023 in out


# Reading a SQLite database without writing to it ---------------------------------------
def _database_in_rollback_mode(tmp_path: Path) -> tuple[str, Path]:
    """A SQLite store of experiments "a" and "b", switched out of WAL mode, so that a
    reader that switches it back (or creates tables) changes the file."""
    url = storage_url("sqlite", tmp_path)
    _two_experiments(url)
    with contextlib.closing(sqlite3.connect(tmp_path / "results.db")) as db:
        db.execute("PRAGMA journal_mode=DELETE")
    return url, tmp_path / "results.db"


def test_reading_commands_leave_a_sqlite_database_as_it_is(tmp_path, capsys):
    url, path = _database_in_rollback_mode(tmp_path)
    before = path.read_bytes()
    for argv in (
        ["list"],
        ["show", "good", "--full"],
        ["compare", "good", "bad"],
        ["export", "good"],
        ["report", "good", "-o", str(tmp_path / "report.html")],
    ):
        code, _, err = run_cli(capsys, *argv, "--storage", url)
        assert (code, err) == (0, ""), argv
    assert len(dotevals.load("good", storage=url)) == 1
    assert path.read_bytes() == before  # still in rollback mode: no switch to WAL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "results.db"]


def test_a_database_older_than_tracebacks_reads_without_them(tmp_path, capsys):
    url, path = _database_in_rollback_mode(tmp_path)
    with contextlib.closing(sqlite3.connect(path)) as db, db:  # the table as it was made then
        db.execute(
            "CREATE TABLE old AS SELECT experiment, evaluation, item_id, record FROM records"
        )
        db.execute("DROP TABLE records")
        db.execute("ALTER TABLE old RENAME TO records")
    code, out, err = run_cli(capsys, "show", "good", "--full", "--storage", url)
    assert (code, err) == (0, "") and "em=True" in out
    with contextlib.closing(sqlite3.connect(path)) as db:  # reading added no column
        assert "traceback" not in {row[1] for row in db.execute("PRAGMA table_info(records)")}
