"""The store format: its version in both backends, older SQLite databases upgraded in
place by a run and read as they are by a reader, and the JSON Schema of a record
checked against real stores of every format."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import jsonschema
import pytest
from cli_runs import run_cli
from stores import KINDS, opened, storage_url

import dotevals
from dotevals import Result, Score, foreach
from dotevals.errors import StorageError
from dotevals.llm import Usage, add_usage
from dotevals.storage.base import FORMAT
from dotevals.storage.schema import record_schema

DATA = Path(__file__).parents[1] / "data"


def old_database(tmp_path: Path) -> Path:
    path = tmp_path / "store.sqlite"
    shutil.copy(DATA / "store-0.1.0" / "store.sqlite", path)
    return path


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA user_version").fetchone()[0]


def primary_key(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        columns = conn.execute("PRAGMA table_info(records)").fetchall()
    return [name for _, name, *_, pk in sorted(columns, key=lambda c: c[-1]) if pk]


def test_a_run_upgrades_an_older_database_in_place_keeping_its_rows(tmp_path):
    path = old_database(tmp_path)
    assert user_version(path) == 0 and "epoch" not in primary_key(path)
    with opened(f"sqlite://{path}") as storage:
        before = storage.load_records("before", "eval_sample.py::eval_sample")
        before[0].epoch = 1  # the same row in another epoch: a record of its own now
        storage.add_records("before", "eval_sample.py::eval_sample", [before[0]])
        after = storage.load_records("before", "eval_sample.py::eval_sample")
    assert user_version(path) == FORMAT
    assert primary_key(path) == ["experiment", "evaluation", "item_id", "epoch"]
    assert [(r.item_id, r.epoch) for r in after] == [(0, 0), (0, 1), (1, 0), (2, 0), (3, 0)]
    assert after[4].traceback == before[3].traceback is not None  # the column is kept


def test_reading_an_older_database_leaves_it_as_it_is(tmp_path, capsys):
    path = old_database(tmp_path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    code, out, _ = run_cli(capsys, "show", "before", "--storage", f"sqlite://{path}", "--full")
    assert code == 0 and "eval_sample" in out
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert user_version(path) == 0


def test_a_store_of_a_newer_format_is_not_written_into(tmp_path):
    path = old_database(tmp_path)
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {FORMAT + 1}")
    with opened(f"sqlite://{path}") as storage, pytest.raises(StorageError, match="newer"):
        storage.experiments()
    store = tmp_path / "json"
    shutil.copytree(DATA / "store-0.1.0" / "json", store)
    experiment = store / "before" / "experiment.json"
    experiment.write_text(json.dumps({**json.loads(experiment.read_text()), "format": 99}))
    with opened(f"json://{store}") as storage, pytest.raises(StorageError, match="format 99"):
        storage.create_experiment("before")


@pytest.mark.parametrize("kind", KINDS)
def test_a_new_store_says_its_format(tmp_path, kind):
    @foreach("i", range(2))
    def eval_x(i):
        return Score("ok", True)

    url = storage_url(kind, tmp_path)
    dotevals.run(eval_x, storage=url, experiment="e", progress=False)
    with opened(url) as storage:
        assert storage.find_experiment("e").format == FORMAT or kind == "sqlite"
    if kind == "sqlite":
        assert user_version(tmp_path / "results.db") == FORMAT


def stored_lines(root: Path) -> list[dict]:
    """Every record of every .jsonl file under ``root`` (0.23's first lines left out)."""
    found = []
    for path in root.rglob("*.jsonl"):
        for line in path.read_text().splitlines():
            data = json.loads(line)
            if "item_id" in data:
                found.append(data)
    return found


def sqlite_records(path: Path) -> list[dict]:
    with sqlite3.connect(path) as conn:
        return [json.loads(text) for (text,) in conn.execute("SELECT record FROM records")]


def test_the_schema_of_a_record_holds_for_every_stored_record(tmp_path, capsys):
    code, out, _ = run_cli(capsys, "schema")
    assert code == 0
    schema = json.loads(out)
    assert schema == record_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)

    @foreach("i", range(4), epochs=2)
    def eval_all(i):
        add_usage("m", Usage(3, 2, 1, 1))
        if i == 3:
            raise ValueError("a row that fails")
        return Result(Score("ok", float("nan") if i == 2 else True), usage={"n": Usage(1, 1)})

    for kind in KINDS:
        dotevals.run(eval_all, storage=storage_url(kind, tmp_path), progress=False)
    records = {
        "new json": stored_lines(tmp_path / "store"),
        "new sqlite": sqlite_records(tmp_path / "results.db"),
        "0.1.0 json": stored_lines(DATA / "store-0.1.0" / "json"),
        "0.1.0 sqlite": sqlite_records(DATA / "store-0.1.0" / "store.sqlite"),
        "0.23 json": stored_lines(DATA / "dotevals-0.23"),
    }
    for where, found in records.items():
        assert found, where
        for record in found:
            validator.validate(record)
    assert {r.get("epoch", 0) for r in records["new json"]} == {0, 1}
    assert not validator.is_valid({**records["new json"][0], "epoch": -1})
    assert not validator.is_valid({**records["new json"][0], "result": {"usage": {"m": 1}}})
