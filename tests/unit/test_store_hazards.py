"""What a store holds against: a row that changes directory, links planted in it,
hand-damaged bookkeeping, two 0.23 files of one evaluation. Real files and databases."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from stores import KINDS, storage_url, stored_records

from dotevals.metrics import accuracy
from dotevals.models import Record, Result, Score
from dotevals.errors import StorageError
from dotevals.storage import EvaluationInfo, get_storage
from dotevals.storage.base import LockOwner


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
    "records of a new evaluation": ("ev2.jsonl", lambda s: s.add_records("exp", "ev2", [record(0)])),
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
