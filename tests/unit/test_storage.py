"""The storage backends, run against real files and databases."""

from __future__ import annotations

import dataclasses
import json
import math
import sqlite3
import threading
import warnings
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import cloudpickle
import pytest
from stores import storage_url

from dotevals.errors import ExperimentNotFoundError, StorageError, UnknownStorageError
from dotevals.llm import Usage
from dotevals.metrics import accuracy
from dotevals.models import Record, Result, Score, ScoreTally
from dotevals.storage import (
    DEFAULT_STORAGE,
    EvaluationInfo,
    Storage,
    get_storage,
    list_backends,
    register_storage,
    registry,
)
from dotevals.storage.encoding import encoded, storable
from dotevals.storage.json import JSONStorage
from dotevals.storage.sqlite import SQLiteStorage

EVAL = "tests/eval_x.py::eval_math[gpt-4/large]"


def completed(storage: Storage) -> set[int]:
    """The rows a resumed run skips, as the runner computes them from storage."""
    return ScoreTally(storage.iter_records("exp", EVAL)).completed()


@pytest.fixture(params=["json", "sqlite"])
def storage(request: pytest.FixtureRequest, tmp_path: Path):
    store = get_storage(storage_url(request.param, tmp_path))
    yield store
    store.close()


@pytest.fixture
def json_storage(tmp_path: Path):
    return get_storage(storage_url("json", tmp_path))


def record(item_id: int, value: bool = True, error: str | None = None, **kwargs) -> Record:
    result = Result(Score("exact", value, [accuracy()]), prompt=f"q{item_id}", **kwargs)
    return Record(result, item_id, {"q": f"q{item_id}", "a": item_id}, error=error)


# Experiments -------------------------------------------------------------
def test_create_list_exists(storage: Storage):
    assert storage.experiments() == []
    assert not storage.experiment_exists("first")
    storage.create_experiment("first")
    storage.create_experiment("second", ephemeral=True)
    storage.create_experiment("first", ephemeral=True)  # idempotent: unchanged

    listed = storage.experiments()
    assert [(e.name, e.ephemeral) for e in listed] == [("first", False), ("second", True)]
    assert listed[0].created_at <= listed[1].created_at
    assert storage.experiment_exists("first") and storage.experiment_exists("second")
    assert not storage.experiment_exists("third")


def test_odd_experiment_names(storage: Storage):
    names = ["a/b", "../up", "sp ace:*?", "résumé-実験", "A", "a"]
    for name in names:
        storage.create_experiment(name)
    assert [e.name for e in storage.experiments()] == names
    assert all(storage.experiment_exists(n) for n in names)


def test_rename(storage: Storage):
    storage.create_experiment("old")
    storage.save_evaluation("old", EvaluationInfo(EVAL, status="completed"))
    storage.add_records("old", EVAL, [record(0), record(1)])

    storage.rename_experiment("old", "new/name")

    assert [e.name for e in storage.experiments()] == ["new/name"]
    assert not storage.experiment_exists("old")
    assert storage.list_evaluations("new/name") == [EVAL]
    assert storage.evaluation_info("new/name", EVAL).status == "completed"
    assert [r.item_id for r in storage.load_records("new/name", EVAL)] == [0, 1]


def test_rename_errors(storage: Storage):
    storage.create_experiment("a")
    storage.create_experiment("b")
    with pytest.raises(ExperimentNotFoundError, match="missing"):
        storage.rename_experiment("missing", "c")
    with pytest.raises(StorageError, match="already exists"):
        storage.rename_experiment("a", "b")
    assert [e.name for e in storage.experiments()] == ["a", "b"]


def test_delete(storage: Storage):
    storage.create_experiment("a")
    storage.create_experiment("b")
    storage.save_evaluation("a", EvaluationInfo(EVAL))
    storage.add_records("a", EVAL, [record(0)])

    storage.delete_experiment("a")

    assert [e.name for e in storage.experiments()] == ["b"]
    assert storage.evaluation_info("a", EVAL) is None
    assert storage.load_records("a", EVAL) == []
    storage.create_experiment("a")  # a new experiment of that name starts empty
    assert storage.list_evaluations("a") == []
    assert storage.load_records("a", EVAL) == []
    with pytest.raises(ExperimentNotFoundError, match="missing"):
        storage.delete_experiment("missing")


def test_missing_experiment(storage: Storage):
    assert storage.list_evaluations("missing") == []
    assert not storage.experiment_exists("missing")  # listing created nothing
    with pytest.raises(ExperimentNotFoundError):
        storage.save_evaluation("missing", EvaluationInfo(EVAL))
    with pytest.raises(ExperimentNotFoundError):
        storage.add_records("missing", EVAL, [record(0)])
    assert storage.evaluation_info("missing", EVAL) is None
    assert storage.load_records("missing", EVAL) == []


# Evaluations -------------------------------------------------------------
def test_evaluation_info_round_trip_and_replace(storage: Storage):
    storage.create_experiment("exp")
    assert storage.evaluation_info("exp", EVAL) is None
    info = EvaluationInfo(EVAL, started_at=1.5, metadata={"model": "gpt-4", "n": 3})
    storage.save_evaluation("exp", info)
    assert storage.evaluation_info("exp", EVAL) == info

    done = EvaluationInfo(
        EVAL, "completed", 1.5, 9.0, {"model": "gpt-4"}, {"exact": {"accuracy": 0.5}}
    )
    storage.save_evaluation("exp", done)
    assert storage.evaluation_info("exp", EVAL) == done
    assert storage.list_evaluations("exp") == [EVAL]


def test_list_evaluations_order_and_odd_names(storage: Storage):
    storage.create_experiment("exp")
    names = ["z::last", EVAL, "a[b]/c\\d", "ünïcödé 評価", "x" * 300]
    for name in names:
        storage.save_evaluation("exp", EvaluationInfo(name))
    storage.save_evaluation("exp", EvaluationInfo(names[0], status="completed"))  # keeps place

    assert storage.list_evaluations("exp") == names
    for name in names:
        assert storage.evaluation_info("exp", name).name == name


def test_evaluations_belong_to_their_experiment(storage: Storage):
    storage.create_experiment("one")
    storage.create_experiment("two")
    storage.save_evaluation("one", EvaluationInfo(EVAL))
    storage.add_records("one", EVAL, [record(0)])
    assert storage.list_evaluations("two") == []
    assert storage.evaluation_info("two", EVAL) is None
    assert storage.load_records("two", EVAL) == []


# Records -----------------------------------------------------------------
def test_add_records_in_batches(storage: Storage):
    storage.create_experiment("exp")
    storage.add_records("exp", EVAL, [record(3), record(1)])
    storage.add_records("exp", EVAL, [])
    storage.add_records("exp", EVAL, [record(0, value=False)])
    storage.add_records("exp", EVAL, [record(2), record(4)])

    loaded = storage.load_records("exp", EVAL)
    assert [r.item_id for r in loaded] == [0, 1, 2, 3, 4]
    original = record(0, value=False)
    assert loaded[0].result == original.result
    assert loaded[0].dataset_row == original.dataset_row
    assert loaded[0].result.scores[0].metrics == [accuracy()]


def test_rewritten_row_keeps_newest(storage: Storage):
    storage.create_experiment("exp")
    storage.add_records("exp", EVAL, [record(0), record(1, error="TimeoutError: slow")])
    storage.add_records("exp", EVAL, [record(1, value=False)])

    loaded = storage.load_records("exp", EVAL)
    assert [(r.item_id, r.error, r.result.scores[0].value) for r in loaded] == [
        (0, None, True),
        (1, None, False),
    ]


def test_completed_rows_exclude_errors(storage: Storage):
    storage.create_experiment("exp")
    assert completed(storage) == set()
    storage.add_records(
        "exp",
        EVAL,
        [
            record(0),
            record(1, error="ValueError: boom"),
            record(2, error="RateLimitError"),
            record(3, value=False),
        ],
    )
    storage.add_records("exp", EVAL, [record(4, error="unparsed")])
    storage.add_records("exp", EVAL, [Record(Result(error="bad answer"), 5, {"q": "q5"})])
    assert completed(storage) == {0, 3}

    storage.add_records("exp", EVAL, [record(1), record(0, error="flaky")])  # retried rows
    assert completed(storage) == {1, 3}


def stored_texts(storage: Storage, evaluation: str) -> list[str]:
    """The text each record of ``evaluation`` is kept as, byte for byte."""
    if isinstance(storage, JSONStorage):
        return storage._records_path("exp", evaluation).read_text("utf-8").splitlines()
    assert isinstance(storage, SQLiteStorage)
    with storage._db() as db:
        query = "SELECT record, traceback FROM records WHERE evaluation = ? ORDER BY item_id"
        return [f"{text} {traceback}" for text, traceback in db.execute(query, (evaluation,))]


def awkward_records() -> list[Record]:
    """Values JSON has no type for, a row with a traceback, and one that cannot be stored."""

    class Unstorable:
        def __repr__(self) -> str:
            raise ValueError("no repr")

    values = [Decimal("2.5"), {3, 1}, float("nan"), (1, "t"), {1: "int key"}, "\ud800", True]
    records = [
        Record(Result(Score("v", value, [accuracy()])), i, {"n": i}, timestamp=1.5)
        for i, value in enumerate(values)
    ]
    failed = Record(Result(), 7, {"n": 7}, "ValueError: bad", 1.5, "Traceback ...\nValueError")
    unstorable = Record(Result(Score("v", Unstorable())), 8, {"n": 8}, timestamp=1.5)
    return [*records, failed, unstorable]


def test_a_record_encoded_where_it_ran_is_stored_byte_for_byte_as_the_main_process_would(
    storage: Storage,
):
    """A worker encodes its rows; what it sends back is written exactly as the main process
    would have encoded it, traceback and unstorable rows included."""
    storage.create_experiment("exp")
    in_worker = [cloudpickle.loads(cloudpickle.dumps(encoded(r))) for r in awkward_records()]
    assert all(r.stored_text for r in in_worker)
    storage.add_records("exp", "worker", [storable(r) for r in in_worker])
    storage.add_records("exp", "main", [storable(r) for r in awkward_records()])
    assert stored_texts(storage, "worker") == stored_texts(storage, "main")
    loaded = storage.load_records("exp", "worker")
    assert [r.result.scores[0].value for r in loaded[:3]] == [
        2.5,
        [1, 3],
        pytest.approx(math.nan, nan_ok=True),
    ]
    assert loaded[7].traceback == "Traceback ...\nValueError"
    assert loaded[8].error.startswith("StorageError: this row's result cannot be stored")


def test_the_text_a_record_was_encoded_as_is_written_as_it_is(storage: Storage):
    storage.create_experiment("exp")
    sent = encoded(record(0))
    assert sent.stored_text is not None
    sent.stored_text = sent.stored_text.replace('"prompt": "q0"', '"prompt": "as encoded"')
    storage.add_records("exp", EVAL, [sent])
    assert storage.load_records("exp", EVAL)[0].result.prompt == "as encoded"
    assert dataclasses.replace(sent, item_id=1).stored_text is None  # a copy is encoded afresh


def test_unserialisable_values_stored_as_repr(storage: Storage):
    class Odd:
        def __repr__(self) -> str:
            return "<Odd>"

    loop: list = [1]
    loop.append(loop)
    storage.create_experiment("exp")
    row = {"obj": Odd(), "blob": b"\x00", "when": {1, 2}, "nested": {(1, 2): "tuple key"}}
    rec = Record(Result(Score("s", Odd()), prompt="p"), 0, {**row, "loop": loop})
    storage.add_records("exp", EVAL, [rec])
    storage.save_evaluation("exp", EvaluationInfo(EVAL, metadata={"client": Odd()}))

    loaded = storage.load_records("exp", EVAL)[0]
    assert loaded.dataset_row["obj"] == "<Odd>"
    assert loaded.dataset_row["blob"] == repr(b"\x00")
    assert loaded.dataset_row["nested"] == {"(1, 2)": "tuple key"}
    assert loaded.dataset_row["loop"] == [1, "..."]
    assert loaded.result.scores[0].value == "<Odd>"
    assert storage.evaluation_info("exp", EVAL).metadata == {"client": "<Odd>"}


def test_threads_adding_records_at_once_store_every_record_once(storage: Storage):
    """dotevals 0.23's add_results may be called from several threads at once. A storage
    object's first write to an evaluation checks the file's last line (a crash may have
    cut it): that check must never take another thread's new batch for a cut line."""
    threads, batch = 8, 10
    storage.create_experiment("exp")
    url, stored = storage.url, 0
    for _ in range(20):  # each round a fresh storage object: its first writes check the file
        fresh = get_storage(url)
        barrier = threading.Barrier(threads)

        def add(start: int, fresh: Storage = fresh, barrier: threading.Barrier = barrier) -> None:
            records = [record(start + i) for i in range(batch)]
            barrier.wait()
            fresh.add_records("exp", "eval", records)

        workers = [threading.Thread(target=add, args=(stored + n * batch,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        fresh.close()
        stored += threads * batch
        assert [r.item_id for r in storage.load_records("exp", "eval")] == list(range(stored))


def test_reopened_storage_sees_data(storage: Storage):
    storage.create_experiment("exp", ephemeral=True)
    storage.save_evaluation("exp", EvaluationInfo(EVAL, status="completed"))
    storage.add_records("exp", EVAL, [record(0), record(1, error="e")])
    storage.close()

    again = get_storage(storage.url)
    try:
        assert type(again) is type(storage)
        assert [(e.name, e.ephemeral) for e in again.experiments()] == [("exp", True)]
        assert again.list_evaluations("exp") == [EVAL]
        assert again.evaluation_info("exp", EVAL).status == "completed"
        assert [r.item_id for r in again.load_records("exp", EVAL)] == [0, 1]
        assert completed(again) == {0}
        again.add_records("exp", EVAL, [record(1)])
    finally:
        again.close()
    assert completed(storage) == {0, 1}


def test_unwritable_location(storage: Storage, tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    name = "store" if storage.scheme == "json" else "db.sqlite"
    bad = get_storage(f"{storage.scheme}://{blocker / 'sub' / name}")
    with pytest.raises(StorageError) as info:
        bad.create_experiment("exp")
    assert str(blocker) in str(info.value)
    bad.close()


# JSON files --------------------------------------------------------------
def records_file(store: JSONStorage) -> Path:
    [path] = store.root.glob("*/*.jsonl")
    return path


def test_json_layout(json_storage: JSONStorage):
    json_storage.create_experiment("my exp")
    json_storage.save_evaluation("my exp", EvaluationInfo(EVAL))
    json_storage.add_records("my exp", EVAL, [record(0), record(1)])

    [directory] = json_storage.root.iterdir()
    assert directory.name.startswith("my_exp-")
    meta = json.loads((directory / "experiment.json").read_text())
    assert meta["name"] == "my exp" and meta["ephemeral"] is False
    [info] = directory.glob("*.info.json")
    [lines] = directory.glob("*.jsonl")
    assert info.name.startswith("tests_eval_x.py__eval_math_gpt-4_large_-")
    assert json.loads(info.read_text())["name"] == EVAL
    assert [json.loads(line)["item_id"] for line in lines.read_text().splitlines()] == [0, 1]
    assert not list(directory.glob("*.tmp"))


def test_json_truncated_last_line_ignored(json_storage: JSONStorage):
    json_storage.create_experiment("exp")
    json_storage.add_records("exp", EVAL, [record(0), record(1), record(2)])
    path = records_file(json_storage)
    path.write_bytes(path.read_bytes()[:-40])  # the process was killed mid-write

    assert [r.item_id for r in json_storage.load_records("exp", EVAL)] == [0, 1]

    # a later run appends after the partial line was cut off
    reopened = get_storage(json_storage.url)
    reopened.add_records("exp", EVAL, [record(2), record(3)])
    assert [r.item_id for r in reopened.load_records("exp", EVAL)] == [0, 1, 2, 3]


def test_json_corrupt_middle_line(json_storage: JSONStorage):
    json_storage.create_experiment("exp")
    json_storage.add_records("exp", EVAL, [record(0), record(1), record(2)])
    path = records_file(json_storage)
    lines = path.read_text().splitlines(keepends=True)
    lines[1] = '{"item_id": 1, "resu\n'
    path.write_text("".join(lines))

    with pytest.raises(StorageError, match="line 2") as info:
        json_storage.load_records("exp", EVAL)
    assert str(path) in str(info.value)
    assert "delete or fix" in str(info.value)


def test_json_corrupt_metadata_file(json_storage: JSONStorage):
    json_storage.create_experiment("exp")
    [meta] = json_storage.root.glob("*/experiment.json")
    meta.write_text("{oops")
    with pytest.warns(UserWarning, match="experiment.json"):
        assert json_storage.list_experiments() == []  # the others would be listed
    with pytest.raises(StorageError, match="experiment.json"):
        json_storage.experiment_exists("exp")


def test_json_storage_creates_directory_on_first_write(tmp_path: Path):
    store = get_storage(f"json://{tmp_path / 'a' / 'b'}")
    assert store.experiments() == []
    assert not (tmp_path / "a").exists()
    store.create_experiment("exp")
    assert (tmp_path / "a" / "b").is_dir()


# SQLite ------------------------------------------------------------------
def test_sqlite_wal_and_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    store = get_storage("sqlite://sub/results.db")
    store.create_experiment("exp")
    store.close()
    db = sqlite3.connect(tmp_path / "sub" / "results.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT name FROM experiments").fetchall() == [("exp",)]
    db.close()


def test_sqlite_in_memory():
    store = get_storage("sqlite://:memory:")
    store.create_experiment("exp")
    store.add_records("exp", EVAL, [record(0)])
    assert [r.item_id for r in store.load_records("exp", EVAL)] == [0]
    store.close()


# Registry ----------------------------------------------------------------
@pytest.mark.parametrize("url", ["foo://x", "://x"])
def test_unknown_storage_lists_schemes(url: str):
    with pytest.raises(UnknownStorageError) as info:
        get_storage(url)
    message = str(info.value)
    assert repr(url) in message
    assert "json://" in message and "sqlite://" in message
    assert "dotevals.storage" in message


def test_empty_location():
    with pytest.raises(StorageError, match="no location"):
        get_storage("json://")


def test_get_storage_urls(tmp_path: Path):
    assert isinstance(get_storage(DEFAULT_STORAGE), JSONStorage)
    store = get_storage(f"sqlite://{tmp_path}/x.db")
    assert isinstance(store, SQLiteStorage)
    assert store.url == f"sqlite://{tmp_path}/x.db"
    assert get_storage(store) is store


@pytest.fixture
def backends() -> Iterator[None]:
    """Backends registered or loaded by the test are forgotten after it."""
    with registry._backends.isolated():
        yield


def test_third_party_backend(backends: None):
    class MemoryStorage(JSONStorage):
        """A stand-in third-party backend."""

    register_storage("memtest", MemoryStorage)
    store = get_storage("memtest://somewhere")
    assert type(store) is MemoryStorage
    assert store.location == "somewhere"
    assert store.url == "memtest://somewhere"
    with pytest.raises(TypeError):
        register_storage("bad", dict)  # type: ignore[arg-type]


def test_entry_points_declared_for_builtins():
    from importlib.metadata import entry_points

    names = {ep.name: ep.load() for ep in entry_points(group="dotevals.storage")}
    assert names.get("json") is JSONStorage
    assert names.get("sqlite") is SQLiteStorage


def test_entry_point_backends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backends: None):
    dist = tmp_path / "site" / "thirdparty-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[dotevals.storage]\n"
        "viaep = dotevals.storage.json:JSONStorage\n"
        "broken = no_such_module_for_dotevals:Backend\n"
        "json = no_such_module_for_dotevals:Shadow\n"  # a built-in scheme: not even loaded
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a scheme's own entry point: no other is loaded
        store = get_storage(f"viaep://{tmp_path / 'x'}")
    with pytest.warns(UserWarning) as warned:
        assert "viaep" in list_backends()
    messages = sorted(str(w.message) for w in warned)
    assert len(messages) == 2
    assert messages[0].startswith("cannot load storage backend 'broken'")
    assert messages[1].startswith(
        "storage backend 'json' from no_such_module_for_dotevals:Shadow ignored: the name is "
        "already taken by dotevals.storage.json:JSONStorage"
    )
    assert type(store) is JSONStorage and store.url.startswith("viaep://")
    assert type(get_storage(f"json://{tmp_path / 'y'}")) is JSONStorage
    with pytest.raises(UnknownStorageError, match="viaep://"):
        get_storage("broken://x")


def test_the_tally_counts_the_usage_and_cost_of_the_newest_record_of_each_sample():
    def record(item_id, epoch, usage, cost):
        made = Record(Result(Score("a", 1), usage=usage), item_id, {}, epoch=epoch)
        made.cost = cost
        return made

    tally = ScoreTally()
    tally.add(record(3, 0, {"m": Usage(10, 1), "n": Usage(5, 5)}, {"m": 1.0}))
    tally.add(record(3, 1, {"m": Usage(20, 2)}, {"m": 2.0}))
    tally.add(record(0, 0, {"m": Usage(1, 1)}, {"m": 0.5}))
    tally.add(record(3, 0, {"m": Usage(100, 0, 50, 0)}, {"m": 4.0}))  # newer: replaces
    assert tally.usage_by_model() == {"m": Usage(121, 3, 50, 0)}
    assert tally.cost_by_model() == {"m": 6.5}
    assert (tally.tokens, tally.total_cost, tally.unpriced()) == (124, 6.5, [])
    tally.add(record(0, 0, {}, {}))  # the newer record of row 0 used nothing
    assert tally.usage_by_model() == {"m": Usage(120, 2, 50, 0)}
    assert (tally.tokens, tally.total_cost) == (122, 6.0)


def test_the_tally_takes_back_costs_that_are_not_finite_and_usage_without_a_price():
    def record(item_id, usage, cost):
        made = Record(Result(Score("a", 1), usage=usage), item_id, {})
        made.cost = cost
        return made

    tally = ScoreTally()
    tally.add(record(0, {"m": Usage(1, 1)}, {"m": math.inf}))
    tally.add(record(1, {"m": Usage(2, 2)}, {"m": 0.25}))
    tally.add(record(2, {"free": Usage(3, 0, 0, 3)}, {}))
    assert tally.cost_by_model() == {"m": math.inf}
    assert (tally.total_cost, tally.unpriced()) == (0.25, ["free"])
    tally.add(record(0, {"m": Usage(1, 1)}, {"m": 0.5}))  # newer: replaces the inf
    tally.add(record(2, {}, {}))  # newer: used nothing
    assert tally.cost_by_model() == {"m": 0.75}
    assert tally.usage_by_model() == {"m": Usage(3, 3)}
    assert (tally.tokens, tally.unpriced()) == (6, [])
    tally.add(record(1, {"m": Usage(2, 2)}, {"m": math.nan}))
    assert math.isnan(tally.cost_by_model()["m"])
    assert tally.total_cost == 0.5


def test_the_tally_keeps_the_newest_record_of_each_row_in_any_order():
    tally = ScoreTally()
    tally.add(Record(Result(Score("a", 1), Score("b", 2)), 5, {}))
    tally.add(Record(Result(Score("a", 3)), 0, {}))
    tally.add(Record(Result(Score("a", 4)), 5, {}))  # the newer record of row 5 has no b
    tally.add(Record(Result(), 9, {}, error="ValueError: x"))
    assert (tally.rows, tally.errors, tally.completed()) == (3, 1, {0, 5})
    assert tally.counted("a") == {0: 3, 5: 4, 9: False}
    assert tally.counted("b") == {0: False, 5: False, 9: False}
