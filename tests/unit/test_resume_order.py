"""Resume checks the dataset's rows against the stored ones: by place, or by a key
column (``storage/resume.py``), through a real writer on real storage."""

from __future__ import annotations

import pytest
from stores import storage_url

from dotevals import foreach
from dotevals.errors import ConfigurationError, DatasetError
from dotevals.models import Record, Result, Score
from dotevals.storage.resume import StoredRows
from dotevals.storage.writer import ExperimentStore

QUESTIONS = [{"q": f"q{i}", "a": i} for i in range(6)]


def stored(rows: list[dict], key: str | None = None, ids: list[int] | None = None) -> StoredRows:
    """What a resumed run learns from records of ``rows`` (stored at ``ids``)."""
    known = StoredRows("eval_x", key)
    for item_id, row in zip(ids or range(len(rows)), rows, strict=True):
        known.add(Record(Result(Score("ok", True)), item_id, row))
    return known


def test_the_same_rows_in_the_same_order_keep_their_places():
    known = stored(QUESTIONS[:3])
    assert [known.place(i, row) for i, row in enumerate(QUESTIONS)] == list(range(6))


def test_a_row_that_is_not_the_one_stored_at_its_place_stops_the_resume():
    known = stored(QUESTIONS[:3])
    with pytest.raises(DatasetError) as error:
        known.place(0, QUESTIONS[5])
    assert str(error.value) == (
        'eval_x: row 0 of the dataset, {"q": "q5", "a": 5}, is not the row stored at its '
        "place: the dataset's order or rows changed since, and resuming would mix them; run "
        "it in a new --experiment, or give the dataset a stable order (no set, a seeded "
        "shuffle), or key its rows by a column: @foreach(..., key=COLUMN)"
    )


class Image:
    """A value JSON has no type for: stored as its repr, which changes between runs."""


def test_rows_that_cannot_be_compared_are_not():
    images = stored([{"image": repr(Image())}, {}])  # a row stored as {}: not storable
    assert images.place(0, {"image": Image()}) == 0
    assert images.place(1, {"image": "anything"}) == 1
    assert images.place(2, DatasetError("row 2 has 3 values")) == 2


def test_rows_stored_by_dotevals_023_compare_with_their_tuples():
    known = stored([{"pair": {"__type__": "tuple", "data": [1, 2]}}])
    assert known.place(0, {"pair": (1, 2)}) == 0
    with pytest.raises(DatasetError):
        known.place(0, {"pair": (2, 1)})


def test_a_key_matches_rows_wherever_they_are():
    known = stored(QUESTIONS[:3], key="q")
    reversed_rows = QUESTIONS[::-1]
    # q5 q4 q3 are new (the next free item_ids), q2 q1 q0 keep theirs
    assert [known.place(i, row) for i, row in enumerate(reversed_rows)] == [3, 4, 5, 2, 1, 0]


def test_a_first_keyed_run_stores_rows_at_their_places():
    known = stored([], key="q")
    assert [known.place(i, row) for i, row in enumerate(QUESTIONS)] == list(range(6))


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [{"q": "same"}, {"q": "same"}],
            "eval_x: rows 0 and 1 of the dataset have the same key q='same': a key must "
            "identify one row",
        ),
        (
            [{"q": ["a"]}],
            "eval_x: row 0's key q=['a'] is list: a key must be text or a whole number",
        ),
        ([DatasetError("eval_x: row 0 has 3 values")], "eval_x: row 0 has 3 values"),
    ],
    ids=["twice", "a list", "a bad row"],
)
def test_a_key_that_cannot_identify_a_row_stops_the_run(rows, message):
    known = stored([], key="q")
    with pytest.raises(DatasetError) as error:
        for position, row in enumerate(rows):
            known.place(position, row)
    assert str(error.value) == message


def test_rows_stored_without_the_key_column_cannot_be_keyed():
    known = stored([{"question": "q0"}], key="q")
    with pytest.raises(DatasetError, match="the row stored as 0 has no column 'q'"):
        known.place(0, {"q": "q0"})


def test_the_writer_skips_keyed_rows_stored_before_wherever_they_are(tmp_path):
    url = storage_url("json", tmp_path)
    writer = ExperimentStore(url, "e").start_evaluation("ev", key="q")
    for item_id, _, row in writer.pending(enumerate(QUESTIONS[:3]), None):
        writer.add(Record(Result(Score("ok", True)), item_id, row))
    writer.finish("completed")
    writer = ExperimentStore(url, "e").start_evaluation("ev", key="q")
    pending = list(writer.pending(enumerate(QUESTIONS[::-1]), None))
    assert pending == [(3, 0, QUESTIONS[5]), (4, 0, QUESTIONS[4]), (5, 0, QUESTIONS[3])]
    writer.finish("completed")


def test_a_key_must_be_a_column():
    with pytest.raises(ConfigurationError) as error:

        @foreach("q,a", QUESTIONS, key="id")
        def eval_x(q, a):
            pass

    assert str(error.value) == (
        "eval_x: key 'id' is not one of the columns (q, a); name the column whose value "
        "identifies each row"
    )
