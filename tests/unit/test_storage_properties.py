"""Property tests of the storage backends: what is read back is what was written.

Every property runs against both backends (``json://`` and ``sqlite://``) on
real files. Hypothesis reuses function-scoped fixtures across examples, so each
example makes its own storage in a ``tempfile.TemporaryDirectory()``. How many
examples run is set by the Hypothesis profile (``tests/conftest.py``).

The model of storage is the one ``storage/base.py`` states: records are
appended in batches; reading keeps the newest record of each ``item_id``, in
``item_id`` order; a resumed run skips exactly the rows whose newest record
did not fail.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from record_strategies import records
from stores import storage_url

from dotevals.errors import ConfigurationError
from dotevals.models import Record, ScoreTally
from dotevals.storage import Storage, get_storage
from dotevals.storage.json import safe_name

BACKENDS = ["json", "sqlite"]

# ---------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------

batches = st.lists(st.lists(records(), max_size=8), min_size=1, max_size=5)
names = st.text(min_size=1, max_size=30)
#: Experiment names: any text a name can be (not blank, valid UTF-8).
experiment_names = names.filter(lambda name: name.strip() != "")


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


@contextmanager
def fresh_storage(kind: str) -> Iterator[tuple[Storage, str]]:
    """A new, empty storage of ``kind`` and its URL (removed afterwards)."""
    with tempfile.TemporaryDirectory() as tmp:
        url = storage_url(kind, Path(tmp))
        storage = get_storage(url)
        try:
            yield storage, url
        finally:
            storage.close()


def newest(written: list[Record]) -> list[Record]:
    """The model: the last record written for each item_id, in item_id order."""
    by_id: dict[int, Record] = {}
    for record in written:
        by_id[record.item_id] = record
    return [by_id[k] for k in sorted(by_id)]


def dicts(records: list[Record]) -> list[dict]:
    return [r.to_dict() for r in records]


def completed(storage: Storage, experiment: str, evaluation: str) -> set[int]:
    """The rows a resumed run skips, as the runner computes them."""
    return ScoreTally(storage.iter_records(experiment, evaluation)).completed()


def reopened(url: str) -> Storage:
    return get_storage(url)


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", BACKENDS)
@given(
    experiment=experiment_names,
    evaluations=st.lists(names, min_size=2, max_size=2, unique=True),
    writes=st.lists(st.tuples(st.integers(0, 1), st.lists(records(), max_size=8)), max_size=6),
)
def test_read_back_is_the_newest_record_of_each_row(kind, experiment, evaluations, writes):
    """Batches of any records, for two evaluations interleaved: each reads back as the model."""
    with fresh_storage(kind) as (storage, url):
        storage.create_experiment(experiment)
        written: dict[str, list[Record]] = {name: [] for name in evaluations}
        for which, batch in writes:
            name = evaluations[which]
            storage.add_records(experiment, name, batch)
            written[name].extend(batch)
        for name in evaluations:
            expected = dicts(newest(written[name]))
            assert dicts(storage.load_records(experiment, name)) == expected
            again = reopened(url)
            try:
                assert dicts(again.load_records(experiment, name)) == expected
            finally:
                again.close()


@pytest.mark.parametrize("kind", BACKENDS)
@given(data=st.data())
def test_resume_skips_exactly_the_rows_whose_newest_record_did_not_fail(kind, data):
    """A first run stores rows 0..n-1 (some errored); later runs rewrite some of them,
    errored again or fixed. After every batch, the rows a resumed run would skip are the
    rows whose newest record did not fail — in this storage object and in a reopened one."""
    n = data.draw(st.integers(1, 30), label="rows")
    first_run = [
        data.draw(records(st.just(item_id)), label=f"row {item_id}") for item_id in range(n)
    ]
    cut = sorted(data.draw(st.sets(st.integers(0, n), max_size=3), label="batch cuts"))
    with fresh_storage(kind) as (storage, url):
        storage.create_experiment("exp")
        written: list[Record] = []
        for start, stop in zip([0, *cut], [*cut, n], strict=True):
            storage.add_records("exp", "eval", first_run[start:stop])
            written.extend(first_run[start:stop])
        for _ in range(data.draw(st.integers(0, 3), label="resumed runs")):
            rewritten = data.draw(st.lists(st.integers(0, n - 1), max_size=10), label="rewrite")
            batch = []
            for item_id in rewritten:
                fixed = data.draw(st.booleans(), label=f"row {item_id} fixed")
                record = data.draw(records(st.just(item_id)))
                if fixed:
                    record.error = None
                    record.result.error = None
                elif not record.failed:
                    record.error = "RowTimeoutError: the row ran longer than its 1 s timeout"
                batch.append(record)
            storage.add_records("exp", "eval", batch)
            written.extend(batch)
            model = newest(written)
            expected = {r.item_id for r in model if not r.failed}
            assert completed(storage, "exp", "eval") == expected
            assert dicts(storage.load_records("exp", "eval")) == dicts(model)
            again = reopened(url)
            try:
                assert completed(again, "exp", "eval") == expected
                assert dicts(again.load_records("exp", "eval")) == dicts(model)
            finally:
                again.close()


@given(
    before=st.lists(records(), min_size=1, max_size=6),
    after=st.lists(records(), min_size=1, max_size=4),
    where=st.floats(0, 1, exclude_max=True),
)
def test_json_line_cut_anywhere_by_a_crash_is_dropped_and_the_next_write_repairs_it(
    before, after, where
):
    """A crash while appending leaves the last line cut at any byte: reading ignores the cut
    record, and the next batch appended (by a new process: a new storage object) reads back
    whole, with every line of the file a valid record again."""
    with fresh_storage("json") as (storage, url):
        storage.create_experiment("exp")
        for record in before:  # one batch per record: each on its own line
            storage.add_records("exp", "eval", [record])
        path = Path(storage.location) / safe_name("exp") / f"{safe_name('eval')}.jsonl"
        data = path.read_bytes()
        last_start = data.rstrip(b"\n").rfind(b"\n") + 1
        cut = last_start + int(where * (len(data) - last_start))  # within the last line
        path.write_bytes(data[:cut])
        whole = cut == len(data) - 1  # only the newline is missing: the record is whole
        survivors = before if whole else before[:-1]
        assert dicts(storage.load_records("exp", "eval")) == dicts(newest(survivors))

        resumed = reopened(url)
        resumed.add_records("exp", "eval", after)
        expected = dicts(newest(survivors + after))
        assert dicts(resumed.load_records("exp", "eval")) == expected
        assert dicts(reopened(url).load_records("exp", "eval")) == expected
        lines = path.read_bytes().split(b"\n")
        assert lines[-1] == b""  # the file ends with a newline
        for line in lines[:-1]:
            Record.from_dict(json.loads(line))


@pytest.mark.parametrize("kind", BACKENDS)
@pytest.mark.parametrize("name", ["", " ", "\t\n"])
def test_a_backend_refuses_a_blank_experiment_name(kind, name):
    """No reader takes a blank name back, so no backend stores one."""
    with fresh_storage(kind) as (storage, _):
        with pytest.raises(ConfigurationError, match="is blank"):
            storage.create_experiment(name)
        assert storage.list_experiments() == []
