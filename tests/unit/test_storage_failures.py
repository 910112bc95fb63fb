"""Storage under attack: values JSON cannot hold, damaged files and rows, stale and
half-written locks, missing storage, modes, NaN. Real files and real SQLite databases,
in this process."""

from __future__ import annotations

import fcntl
import json
import math
import os
import sqlite3
import stat
from decimal import Decimal
from pathlib import Path

import pytest
from pool_support import dead_pid
from stores import KINDS, storage_url

from dotevals.cli import main as dotevals_main
from dotevals.errors import ExperimentInUseError, StorageError
from dotevals.metrics import accuracy, mean
from dotevals.models import Record, Result, Score
from dotevals.storage import EvaluationInfo, Storage, get_storage
from dotevals.storage.base import LockOwner
from dotevals.storage.json import JSONStorage, safe_name
from dotevals.storage.lockfile import FileLocks
from dotevals.storage.writer import ExperimentStore

EVAL = "eval_x.py::eval_x"


@pytest.fixture(params=KINDS)
def storage(request: pytest.FixtureRequest, tmp_path: Path):
    store = get_storage(storage_url(request.param, tmp_path))
    store.create_experiment("exp")
    yield store
    store.close()


def record(item_id: int, value: object = True) -> Record:
    return Record(Result(Score("s", value, [accuracy()])), item_id, {"q": item_id})


def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"x": value}
    return value


class BadRepr:
    def __repr__(self) -> str:
        raise ValueError("no repr for you")


# One row that cannot be encoded costs only that row ------------------------------
def test_unencodable_rows_are_stored_as_their_errors(storage: Storage):
    rows = [record(0), record(1, nested(2000)), record(2, BadRepr()), record(3, False)]
    rows.append(Record(Result(Score("s", True)), 4, {"q": nested(2000)}))
    storage.add_records("exp", EVAL, rows)

    loaded = storage.load_records("exp", EVAL)
    assert [r.item_id for r in loaded] == [0, 1, 2, 3, 4]
    assert [r.result.scores[0].value for r in (loaded[0], loaded[3])] == [True, False]
    assert loaded[0].error is None and loaded[3].error is None
    for bad, reason in ((1, "RecursionError"), (2, "ValueError: no repr for you")):
        assert loaded[bad].error.startswith("StorageError: this row's result cannot be stored")
        assert reason in loaded[bad].error
        assert loaded[bad].dataset_row == {"q": bad}
    assert "RecursionError" in loaded[4].error and loaded[4].dataset_row == {}


# What a metric sees is the same live and after a resume -----------------------------
def run_summary(url: str, records: list[Record]) -> dict:
    store = ExperimentStore(url, "same")
    run = store.start_evaluation(EVAL)
    for rec in records:
        run.add(rec)
    summary = run.finish("completed").metrics
    store.storage.close()
    return summary


ODD_VALUES: list[object] = [True, Decimal(0), set(), frozenset(), Decimal("2.5"), {3, 1}, ()]
ODD_TRUTHY = 3  # True, Decimal("2.5"), {1, 3}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("with_numpy", [False, True])
def test_metrics_are_the_same_live_and_after_resume(tmp_path: Path, kind: str, with_numpy: bool):
    values, truthy = list(ODD_VALUES), ODD_TRUTHY
    if with_numpy:
        np = pytest.importorskip("numpy")
        values += [np.False_, np.int64(0), np.float64(0.0), np.array([]), np.True_, np.int8(3)]
        truthy += 2
    url = storage_url(kind, tmp_path)
    records = [
        Record(Result(Score("truth", v, [accuracy()]), Score("n", 1, [mean()])), i, {"i": i})
        for i, v in enumerate(values)
    ]
    live = run_summary(url, records)
    resumed = run_summary(url, [])  # every row is done: the summary comes from storage
    assert live == resumed
    assert live["truth"]["accuracy"] == pytest.approx(truthy / len(values))


def test_only_a_gone_process_of_this_host_holds_a_stale_lock():
    me = LockOwner.me()
    assert me.is_this_process() and not me.is_stale()
    assert LockOwner(dead_pid(), me.host, 0.0).is_stale()
    elsewhere = LockOwner(dead_pid(), me.host + "-elsewhere", 0.0)
    assert not elsewhere.is_stale() and not elsewhere.is_this_process()


def test_an_empty_lock_file_being_written_is_not_stale(tmp_path: Path, monkeypatch):
    storage = get_storage(f"json://{tmp_path}")
    storage.create_experiment("exp")
    path = storage.root / safe_name("exp") / "run.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)  # a run between taking and naming
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        monkeypatch.setattr(FileLocks, "NAME_WAIT", 0.2)
        with pytest.raises(ExperimentInUseError, match="in use by a process"):
            storage.lock_experiment("exp", LockOwner.me())
    finally:
        os.close(fd)
    assert path.read_text() == ""
    # its holder gone, the same empty file is free
    assert storage.lock_experiment("exp", LockOwner.me()) is None
    assert json.loads(path.read_text())["pid"] == os.getpid()
    storage.unlock_experiment("exp", LockOwner.me())
    assert not path.exists()


# Damaged records -------------------------------------------------------------------
DAMAGE = {
    "item_id is text": ("item_id", "2"),
    "item_id is null": ("item_id", None),
    "item_id is a float": ("item_id", 2.5),
    "item_id is far past the rows": ("item_id", 100_000_000),
    "item_id is negative": ("item_id", -1),
    "item_id is a bool": ("item_id", True),
    "result is a list": ("result", []),
    "scores are not a list": ("result", {"scores": 3}),
    "row is a list": ("dataset_row", [1]),
    "record is a list": (None, [1, 2]),
    "epoch is negative": ("epoch", -1),
    "epoch is text": ("epoch", "1"),
    "duration is text": ("duration", "fast"),
    "cost is a number": ("cost", 0.5),
    "usage is not counts": ("result", {"scores": [], "usage": {"m": {"input_tokens": -3}}}),
    "usage is too large": ("result", {"scores": [], "usage": {"m": {"input_tokens": 2**63}}}),
    "settings are a list": ("settings", {"m": [1]}),
}


def four_rows(url: str) -> Storage:
    """A storage holding rows 0 to 3 of EVAL in experiment "exp"."""
    storage = get_storage(url)
    storage.create_experiment("exp")
    storage.add_records("exp", EVAL, [record(i) for i in range(4)])
    return storage


def damaged(text: str | bytes, damage: str) -> str:
    key, value = DAMAGE[damage]
    return json.dumps(value if key is None else {**json.loads(text), key: value})


@pytest.mark.parametrize("damage", DAMAGE)
def test_damaged_json_record_is_named_by_file_and_line(tmp_path: Path, damage: str):
    storage = four_rows(f"json://{tmp_path}")
    [path] = storage.root.glob("*/*.jsonl")
    lines = path.read_text().splitlines(keepends=True)
    lines[2] = damaged(lines[2], damage) + "\n"
    path.write_text("".join(lines))

    for read in (
        lambda: storage.load_records("exp", EVAL),
        lambda: ExperimentStore(storage, "exp").start_evaluation(EVAL),
    ):
        with pytest.raises(StorageError) as info:
            read()
        assert str(info.value).startswith(f"{path}, line 3, is not a valid record (")
        assert str(info.value).endswith("delete or fix that line to read this evaluation")


@pytest.mark.parametrize("damage", DAMAGE)
def test_damaged_sqlite_row_is_named(tmp_path: Path, damage: str):
    storage = four_rows(f"sqlite://{tmp_path / 'results.db'}")
    storage.close()
    key, value = DAMAGE[damage]
    with sqlite3.connect(tmp_path / "results.db") as db:
        (text,) = db.execute("SELECT record FROM records WHERE item_id = 2").fetchone()
        db.execute("UPDATE records SET record = ? WHERE item_id = 2", (damaged(text, damage),))
        if key == "item_id" and type(value) is int:  # the column agrees with the record
            db.execute("UPDATE records SET item_id = ? WHERE item_id = 2", (value,))
    db.close()

    with pytest.raises(StorageError) as info:
        storage.load_records("exp", EVAL)
    assert str(info.value).startswith(f"{tmp_path / 'results.db'}: the record of row ")
    assert "is not a valid record (" in str(info.value)
    storage.close()


@pytest.mark.parametrize("last", ['{"item_id": "3", "result": {}}', "\x00\x00\x00", "[]"])
def test_invalid_last_line_is_cut_like_a_partial_one(tmp_path: Path, last: str):
    storage = four_rows(f"json://{tmp_path}")
    [path] = storage.root.glob("*/*.jsonl")
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:3]) + last + "\n\n")
    assert [r.item_id for r in storage.load_records("exp", EVAL)] == [0, 1, 2]

    reopened = get_storage(storage.url)  # a later run appends
    reopened.add_records("exp", EVAL, [record(3), record(4)])
    assert [r.item_id for r in reopened.load_records("exp", EVAL)] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("command", [["list"], ["show", "exp"], ["delete", "exp"]])
def test_reading_commands_do_not_create_storage(tmp_path, capsys, kind, command):
    url = storage_url(kind, tmp_path / "typo")
    assert dotevals_main([*command, "--storage", url]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(f"error: there is no storage at {url}: check --storage")
    assert not (tmp_path / "typo").exists()


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_json_files_get_the_same_modes(tmp_path: Path, umask: int):
    previous = os.umask(umask)
    try:
        storage = get_storage(f"json://{tmp_path / 'store'}")
        storage.create_experiment("exp")
        storage.save_evaluation("exp", EvaluationInfo(EVAL))
        storage.add_records("exp", EVAL, [record(0)])
        storage.lock_experiment("exp", LockOwner.me())
        files = [p for p in (tmp_path / "store").rglob("*") if p.is_file()]
        assert {p.name.rsplit(".", 1)[-1] for p in files} == {"json", "jsonl", "lock"}
        assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o666 & ~umask}
        storage.close()
    finally:
        os.umask(previous)


def strict_json(text: str) -> object:
    def refuse(token: str) -> None:
        raise ValueError(f"{token} is not strict JSON")

    return json.loads(text, parse_constant=refuse)


def test_non_finite_floats_are_strict_json_and_read_back(storage: Storage, tmp_path: Path):
    odd = Record(
        Result(Score("s", math.nan, [mean()], {"bounds": [-math.inf, math.inf]})),
        0,
        {"x": math.nan, "$float": "NaN", "y": {"$float": "no"}},
    )
    storage.add_records("exp", EVAL, [odd, record(1, 0.5)])
    info = EvaluationInfo(EVAL, metrics={"s": {"mean": math.nan}})
    storage.save_evaluation("exp", info)

    if isinstance(storage, JSONStorage):
        texts = [p.read_text() for p in storage.root.glob("*/*.json*")]
        texts = [line for text in texts for line in text.splitlines()]
    else:
        with sqlite3.connect(storage.path) as db:
            texts = [t for (t,) in db.execute("SELECT record FROM records")]
            texts += [t for (t,) in db.execute("SELECT info FROM evaluations")]
        db.close()
    for text in texts:
        strict_json(text)

    [back, _] = storage.load_records("exp", EVAL)
    assert math.isnan(back.result.scores[0].value)
    assert back.result.scores[0].metadata == {"bounds": [-math.inf, math.inf]}
    assert math.isnan(back.dataset_row["x"])
    assert back.dataset_row["y"] == {"$float": "no"}
    assert math.isnan(storage.evaluation_info("exp", EVAL).metrics["s"]["mean"])
