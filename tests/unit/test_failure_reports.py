"""Row errors made visible, in this process: the traceback ``dotevals.run`` stores,
records stored before tracebacks were kept, ``show --errors`` of an evaluation
without errors, and the verdict on errored rows, which counts the rows stored
(in real pytest sessions: e2e/test_failure_reports.py)."""

from __future__ import annotations

import json
import sqlite3

import pytest
from cli_runs import cli_output
from stores import stored_records

import dotevals
from dotevals import foreach
from dotevals._declare.error_bound import ErrorBound, exceeded, parse_fail_on_error
from dotevals.errors import ConfigurationError, RowsFailedError
from dotevals.models import Record, Result, Score
from dotevals.runners import Runner
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


# The verdict: what is stored, not which rows ran ------------------------------------


@pytest.mark.parametrize(
    ("given", "bound"),
    [
        (None, None),
        (True, ErrorBound(count=0)),
        ("true", ErrorBound(count=0)),
        (False, ErrorBound()),
        ("no", ErrorBound()),
        (0, ErrorBound(count=0)),
        (5, ErrorBound(count=5)),
        ("5", ErrorBound(count=5)),
        (1.0, ErrorBound(count=1)),
        (0.1, ErrorBound(fraction=0.1)),
        ("0.1", ErrorBound(fraction=0.1)),
        ("10%", ErrorBound(fraction=0.1)),
    ],
)
def test_fail_on_error_takes_a_count_a_fraction_or_a_switch(given, bound):
    assert parse_fail_on_error(given) == bound


@pytest.mark.parametrize("given", [-1, 2.5, "lots", "100%", float("nan"), [1]])
def test_a_bad_fail_on_error_is_one_line(given):
    with pytest.raises(ConfigurationError, match="fail_on_error") as raised:
        parse_fail_on_error(given)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("bound", "errors", "rows", "fails"),
    [
        (None, 12, 60, False),  # the default: only when every stored row errored
        (None, 60, 60, True),
        (None, 0, 0, False),
        (ErrorBound(count=5), 5, 60, False),  # 5 tolerated
        (ErrorBound(count=5), 6, 60, True),
        (ErrorBound(fraction=0.1), 6, 60, False),  # 10 % tolerated
        (ErrorBound(fraction=0.1), 7, 60, True),
        (ErrorBound(fraction=0.29), 29, 100, False),  # no rounding against the user
        (ErrorBound(count=0), 1, 60, True),
        (ErrorBound(), 60, 60, False),
    ],
)
def test_the_bound_counts_the_stored_rows(bound, errors, rows, fails):
    assert exceeded(bound, errors, rows) is fails


def _flaky(errored: set[int]):
    @foreach("q", range(10))
    def eval_flaky(q):
        if q in errored:
            raise ValueError(f"no answer to {q}")
        return Score("ok", True)

    return eval_flaky


def test_a_rerun_of_an_unchanged_experiment_gets_the_same_verdict(tmp_path):
    """3 of 10 rows error every time: the first run judges 10 rows, the rerun runs only
    the 3 (which error again) and still judges all 10."""
    url = f"json://{tmp_path / 'store'}"
    verdicts = []
    for _ in range(3):
        for bound, expected in ((None, False), (0.2, True), (3, False), (2, True)):
            runner = Runner(
                experiment_name=f"e-{bound}", storage=url, progress=False, fail_on_error=bound
            )
            runner.run([_flaky({1, 4, 7})])
            (outcome,) = runner.outcomes
            assert (outcome.summary.rows, outcome.summary.errors) == (10, 3)
            verdicts.append(outcome.rows_failed == expected)
    assert all(verdicts)


def test_the_evaluations_own_bound_wins_over_the_runs(tmp_path):
    errored = {0, 1}

    @foreach("q", range(10), fail_on_error=False)
    def eval_tolerant(q):
        if q in errored:
            raise ValueError("no")
        return Score("ok", True)

    runner = Runner(storage=f"json://{tmp_path}", progress=False, fail_on_error=True)
    runner.run([eval_tolerant, _flaky(errored)])
    tolerant, strict = runner.outcomes
    assert not tolerant.rows_failed and strict.rows_failed
    assert strict.fail_on_error == ErrorBound(count=0)


def test_run_raises_only_when_a_bound_is_set(tmp_path):
    url = f"json://{tmp_path}"
    evaluation = _flaky(set(range(10)))
    summary = dotevals.run(evaluation, experiment="e", storage=url, progress=False)
    assert summary.errors == 10  # every row errored: judging it is left to the caller
    with pytest.raises(RowsFailedError) as raised:
        dotevals.run(evaluation, experiment="e", storage=url, progress=False, fail_on_error=0.5)
    assert str(raised.value).startswith(
        "eval_flaky: 10 of 10 stored rows errored, more than fail_on_error=0.5 (50 %) allows; "
        "the first (row 0):\n\nTraceback (most recent call last):\n"
    )


def test_new_counts_first_scored_rows_and_reruns_count_apart(tmp_path):
    url = f"json://{tmp_path}"
    errored = {2, 5, 8}
    first = Runner(experiment_name="e", storage=url, progress=False)
    first.run([_flaky(errored)])
    assert (first.outcomes[0].new_rows, first.outcomes[0].rerun_rows) == (10, 0)
    errored.discard(5)  # the model answers row 5 now
    second = Runner(experiment_name="e", storage=url, progress=False)
    second.run([_flaky(errored)])
    outcome = second.outcomes[0]
    assert (outcome.new_rows, outcome.rerun_rows, outcome.rerun_errors) == (0, 3, 2)
    assert (outcome.summary.rows, outcome.summary.errors) == (10, 2)


def test_a_rerun_that_runs_no_row_leaves_the_end_time(tmp_path):
    url = f"json://{tmp_path}"
    evaluation = _flaky(set())
    dotevals.run(evaluation, experiment="e", storage=url, progress=False)
    storage = get_storage(url)
    before = storage.evaluation_info("e", "eval_flaky")
    dotevals.run(evaluation, experiment="e", storage=url, progress=False)
    after = get_storage(url).evaluation_info("e", "eval_flaky")
    assert after.status == before.status == "completed"
    assert after.ended_at == before.ended_at
    assert after.metadata["last_run_at"] > before.metadata["last_run_at"]  # the run is noted
