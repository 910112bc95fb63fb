"""Row errors made visible, in this process: the traceback ``dotevals.run`` stores,
records stored before tracebacks were kept, and ``show --errors`` of an evaluation
without errors (in real pytest sessions: e2e/test_failure_reports.py)."""

from __future__ import annotations

import json
import sqlite3

from cli_runs import cli_output
from stores import stored_records

import dotevals
from dotevals import foreach
from dotevals.models import Record, Result, Score
from dotevals.storage import EvaluationInfo, get_storage


def test_a_row_error_stored_by_run_has_no_unrelated_chained_error(tmp_path):
    @foreach("q", [1])
    def eval_raises(q):
        raise ValueError(f"no answer to {q}")

    url = f"json://{tmp_path / 'store'}"
    dotevals.run(eval_raises, experiment="e", storage=url, progress=False)
    storage = get_storage(url)
    try:
        (name,) = storage.list_evaluations("e")
    finally:
        storage.close()
    (record,) = stored_records(url, "e", name)
    assert record.traceback.startswith("Traceback (most recent call last):\n"), record.traceback
    assert "During handling" not in record.traceback
    assert record.traceback.rstrip().endswith("ValueError: no answer to 1")


def test_records_stored_without_a_traceback_stay_readable(tmp_path):
    """Storage written before tracebacks were kept: json lines without the field, and
    an sqlite records table without the column."""
    old_record = {
        "item_id": 0,
        "dataset_row": {"q": 1},
        "result": {"scores": [], "prompt": None, "error": None, "model_response": None},
        "error": "ValueError: old",
        "timestamp": 1.0,
    }
    new_record = Record(Result(), 1, {"q": 2}, error="KeyError: 'k'", traceback="Traceback...\n")

    json_storage = get_storage(f"json://{tmp_path / 'store'}")
    json_storage.create_experiment("e")
    json_storage.add_records("e", "ev", [Record(Result(Score("s", 1)), 5, {})])
    jsonl = next((tmp_path / "store").glob("*/*.jsonl"))
    jsonl.write_text(json.dumps(old_record) + "\n")

    database = tmp_path / "old.db"
    with sqlite3.connect(database) as db:
        db.executescript(
            """
            CREATE TABLE experiments (name TEXT PRIMARY KEY, created_at REAL NOT NULL,
                                      ephemeral INTEGER NOT NULL DEFAULT 0);
            CREATE TABLE records (experiment TEXT NOT NULL, evaluation TEXT NOT NULL,
                                  item_id INTEGER NOT NULL, record TEXT NOT NULL,
                                  PRIMARY KEY (experiment, evaluation, item_id));
            INSERT INTO experiments VALUES ('e', 1.0, 0);
            """
        )
        db.execute("INSERT INTO records VALUES ('e', 'ev', 0, ?)", (json.dumps(old_record),))
    db.close()
    sqlite_storage = get_storage(f"sqlite://{database}")

    for storage in (json_storage, sqlite_storage):
        (old,) = storage.load_records("e", "ev")
        assert (old.error, old.traceback) == ("ValueError: old", None)
        storage.add_records("e", "ev", [new_record])
        old, new = storage.load_records("e", "ev")
        assert (old.traceback, new.traceback) == (None, "Traceback...\n")
        storage.close()


def test_show_errors_of_an_evaluation_without_errors(tmp_path, capsys):
    url = f"json://{tmp_path / 'store'}"
    storage = get_storage(url)
    storage.create_experiment("e")
    storage.save_evaluation("e", EvaluationInfo("ev"))
    storage.add_records("e", "ev", [Record(Result(Score("s", True)), 0, {"q": 1})])
    out = cli_output(capsys, "show", "e", "--storage", url, "--errors")
    assert out.endswith("Errors of 'ev' (0 of 1 rows)\n\nNo errors.\n")
