"""A store written before the package was regrouped reads the same after it.

``tests/data/store-0.1.0`` holds an experiment that dotevals 0.1.0 stored, in
both backends, from the evaluation in ``eval_sample.py.txt`` (four rows, one
errored), with what its own ``dotevals show --format json --full`` and
``dotevals export --format jsonl`` printed then.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cli_runs import run_cli
from results_support import USAGE_COLUMNS, nothing_spent

DATA = Path(__file__).parents[1] / "data" / "store-0.1.0"
#: The keys ``show --format json`` gives each evaluation since stores keep repeats,
#: usage and latency.
NEW_SHOW_KEYS = ("samples", "epochs", "usage", "tokens", "cost", "latency")
#: The columns ``export`` has had since then.
NEW_EXPORT_KEYS = ("epoch", "duration", *USAGE_COLUMNS, "cost", "models")


@pytest.fixture(params=["json", "sqlite"])
def old_store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """A copy of the old store of one backend (reading sqlite may write its journal)."""
    kind = request.param
    if kind == "json":
        shutil.copytree(DATA / "json", tmp_path / "json")
        return kind, f"json://{tmp_path / 'json'}"
    shutil.copy(DATA / "store.sqlite", tmp_path / "store.sqlite")
    return kind, f"sqlite://{tmp_path / 'store.sqlite'}"


def test_show_reads_the_old_store_as_it_did(capsys: pytest.CaptureFixture[str], old_store):
    kind, url = old_store
    code, out, _ = run_cli(capsys, "show", "before", "--storage", url, "--format", "json", "--full")
    assert code == 0
    shown, then = json.loads(out), json.loads((DATA / f"show-{kind}.json").read_text())
    shown.pop("storage"), then.pop("storage")  # where the copy lies
    # what show says since repeats, usage and latency are kept: for this store, one epoch
    # per row, nothing spent and no duration known
    (evaluation,) = shown["evaluations"]
    added = {key: evaluation.pop(key) for key in NEW_SHOW_KEYS}
    assert added == nothing_spent(4)
    assert shown == then


def test_export_reads_the_old_store_as_it_did(capsys: pytest.CaptureFixture[str], old_store):
    kind, url = old_store
    code, out, _ = run_cli(capsys, "export", "before", "--storage", url, "--format", "jsonl")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    then = [json.loads(line) for line in (DATA / f"export-{kind}.jsonl").read_text().splitlines()]
    # the columns export has had since repeats, usage and latency are kept: epoch 0, and
    # nothing known of the rest in this store
    for line in lines:
        assert {key: line.pop(key) for key in NEW_EXPORT_KEYS} == {
            "epoch": 0,
            **dict.fromkeys(NEW_EXPORT_KEYS[1:]),
        }
    assert lines == then
    assert [list(line) for line in lines] == [list(line) for line in then]  # the order too
