"""``dotevals export`` and ``dotevals.load``, on storage written by real runs."""

from __future__ import annotations

import csv
import json
import sys

import pytest
from results_support import write_experiments
from stores import KINDS, storage_url, stored_records

import dotevals
from dotevals.cli import main
from dotevals.errors import ConfigurationError, ExperimentNotFoundError
from dotevals.storage import get_storage

SUMS_COLUMNS = ["question", "answer", "exact_match"]
LENGTHS_COLUMNS = ["text", "row.error", "length", "score.text"]
FIXED_END = ["prompt", "model_response", "error", "timestamp"]


@pytest.fixture(scope="module", params=KINDS)
def results_url(request, tmp_path_factory):
    """The experiments "a" and "b" that real runs wrote, once per module in each backend."""
    return write_experiments(storage_url(request.param, tmp_path_factory.mktemp(request.param)))


def test_csv_file_has_a_header_and_one_line_per_row(results_url, tmp_path, capsys):
    out = tmp_path / "a.csv"
    assert main(["export", "a", "--storage", results_url, "-o", str(out)]) == 0
    assert capsys.readouterr().out == f"Wrote 8 rows of 'a' to {out}.\n"
    assert len(out.read_text(encoding="utf-8").splitlines()) == 1 + 5 + 3
    with out.open(newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        rows = list(reader)
    assert reader.fieldnames == ["evaluation", "item_id", *SUMS_COLUMNS, *LENGTHS_COLUMNS] + (
        FIXED_END
    )
    sums = [r for r in rows if r["evaluation"] == "eval_sums"]
    # row 0 raised on the first run and was run again: its newest record alone
    assert [(r["item_id"], r["exact_match"], r["error"]) for r in sums] == [
        ("0", "True", ""),
        ("1", "False", ""),
        ("2", "True", ""),
        ("3", "", "ValueError: no answer to row 3"),
        ("4", "True", ""),
    ]
    assert sums[1]["model_response"] == "40" and sums[1]["prompt"] == "What is 2 + 2?"
    assert sums[2]["question"] == "What is <script>alert(3)</script> + 3?"
    records = stored_records(results_url, "a", "eval_sums")
    assert [float(r["timestamp"]) for r in sums] == [r.timestamp for r in records]


def test_columns_named_like_others_are_prefixed(results_url, capsys):
    assert main(["export", "a", "--evaluation", "eval_lengths", "--storage", results_url]) == 0
    rows = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert [(r["text"], r["row.error"], r["length"], r["score.text"]) for r in rows] == [
        ("abc", "x", "3", "ABC"),
        ("de", "y", "2", "DE"),
        ("", "z", "0", ""),
    ]
    assert list(rows[0]) == ["evaluation", "item_id", *LENGTHS_COLUMNS, *FIXED_END]
    assert {r["error"] for r in rows} == {""}


def test_jsonl_on_stdout_one_object_per_row(results_url, capsys):
    assert main(["export", "b", "--format", "jsonl", "--storage", results_url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5
    rows = [json.loads(line) for line in lines]
    assert [(r["item_id"], r.get("exact_match"), r["error"]) for r in rows] == [
        (0, True, None),
        (1, True, None),
        (2, False, None),
        (3, None, "ValueError: no answer to row 3"),
        (4, None, "ZeroDivisionError: no answer to row 4"),
    ]
    assert [r["timestamp"] for r in rows] == [
        r.timestamp for r in stored_records(results_url, "b", "eval_sums")
    ]
    assert rows[2]["model_response"] == "60" and rows[0]["answer"] == "2"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["zz"], "error: experiment 'zz' not found in {url} (see 'dotevals list --storage {url}')"),
        (
            ["a", "--evaluation", "eval_nope"],
            "error: evaluation 'eval_nope' not found in experiment 'a' in {url} "
            "(its evaluations: 'eval_sums', 'eval_lengths')",
        ),
    ],
)
def test_export_names_what_is_missing(results_url, capsys, tmp_path, argv, message):
    out = tmp_path / "x.csv"
    assert main(["export", *argv, "--storage", results_url, "-o", str(out)]) == 1
    assert capsys.readouterr() == ("", message.format(url=results_url) + "\n")
    assert not out.exists()


def test_export_to_a_file_that_cannot_be_written(results_url, capsys, tmp_path):
    out = tmp_path / "missing" / "a.csv"
    assert main(["export", "a", "--storage", results_url, "-o", str(out)]) == 1
    assert capsys.readouterr().err == f"error: cannot write {out}: No such file or directory\n"


def test_load_returns_each_rows_newest_record_by_evaluation(results_url):
    records = dotevals.load("a", storage=results_url)
    assert list(records) == ["eval_sums", "eval_lengths"]
    assert records == {name: stored_records(results_url, "a", name) for name in records}
    sums = records["eval_sums"]
    assert [r.item_id for r in sums] == [0, 1, 2, 3, 4]
    assert [r.failed for r in sums] == [False, False, False, True, False]
    assert sums[3].error == "ValueError: no answer to row 3"
    assert "raise self.raises[row]" in sums[3].traceback


def test_load_one_evaluation_from_an_open_storage(results_url):
    storage = get_storage(results_url)
    try:
        records = dotevals.load("b", storage=storage, evaluation="eval_sums")
        assert storage.list_evaluations("b") == ["eval_sums"]  # still open
    finally:
        storage.close()
    assert [r.item_id for r in records["eval_sums"]] == [0, 1, 2, 3, 4]


def test_load_names_what_is_missing(results_url):
    with pytest.raises(ExperimentNotFoundError, match="experiment 'zz' not found in"):
        dotevals.load("zz", storage=results_url)
    with pytest.raises(ConfigurationError, match="evaluation 'eval_nope' not found"):
        dotevals.load("a", storage=results_url, evaluation="eval_nope")


def test_load_as_frame_one_row_per_record_a_column_per_score(results_url):
    pytest.importorskip("pandas")
    frame = dotevals.load("a", storage=results_url, as_frame=True)
    assert list(frame.columns) == [
        "evaluation",
        "item_id",
        *SUMS_COLUMNS,
        *LENGTHS_COLUMNS,
        *FIXED_END,
    ]
    assert len(frame) == 8
    sums = frame[frame.evaluation == "eval_sums"]
    assert sums["exact_match"].tolist()[:3] == [True, False, True]
    assert sums["error"].tolist()[3] == "ValueError: no answer to row 3"
    lengths = frame[frame.evaluation == "eval_lengths"]
    assert lengths["length"].mean() == pytest.approx(5 / 3)
    assert lengths["row.error"].tolist() == ["x", "y", "z"]


def test_as_frame_without_pandas_names_the_extra(results_url, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # what `import pandas` sees when absent
    with pytest.raises(ImportError, match=r"needs pandas: pip install 'dotevals\[pandas\]'"):
        dotevals.load("a", storage=results_url, as_frame=True)
