"""``dotevals export`` and ``dotevals.load``, on storage written by real runs."""

from __future__ import annotations

import csv
import io
import json
import math
import sys

import pytest
from results_support import USAGE_COLUMNS, write_experiments
from stores import KINDS, storage_url, stored_records

import dotevals
from dotevals import Result, Score, foreach
from dotevals.cli import main
from dotevals.errors import ConfigurationError, ExperimentNotFoundError
from dotevals.metrics import accuracy
from dotevals.storage import get_storage
from dotevals.storage.encoding import decode_json

SUMS_COLUMNS = ["question", "answer", "exact_match"]
LENGTHS_COLUMNS = ["text", "row.error", "length", "score.text"]
FIXED_START = ["evaluation", "item_id", "epoch"]
FIXED_END = ["prompt", "model_response", "error", "duration", *USAGE_COLUMNS]
FIXED_END += ["cost", "models", "timestamp"]


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
    assert reader.fieldnames == [*FIXED_START, *SUMS_COLUMNS, *LENGTHS_COLUMNS] + (FIXED_END)
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
    assert list(rows[0]) == [*FIXED_START, *LENGTHS_COLUMNS, *FIXED_END]
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
        *FIXED_START,
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


# Untrusted text in exports ------------------------------------------------------------
UNTRUSTED = [
    {"q": '=HYPERLINK("http://x")', "n": -0.5, "t": "-0.5", "tab": "\t=1", "cr": "\r=1"},
    {"q": "@SUM(A1)", "n": 2, "t": "+1+2", "tab": "-", "cr": "plain"},
]


def write_untrusted(url: str) -> None:
    """Rows whose text a spreadsheet would run, non-finite floats and control characters."""

    @foreach("q,n,t,tab,cr", [tuple(row.values()) for row in UNTRUSTED])
    def eval_untrusted(q, n, t, tab, cr):
        values = {"=1+1": "=cmd|' /C calc'!A0", "-v": -0.5 if n == -0.5 else float("nan")}
        return Result(
            *(Score(name, value, [accuracy()]) for name, value in values.items()),
            Score("inf", [float("inf"), {"x": float("-inf")}]),
            model_response="-2+3\x1b]0;title\x07\x9b",
            error="@error" if n == 2 else None,
        )

    dotevals.run(eval_untrusted, experiment="u", storage=url, progress=False)


def test_csv_cells_a_spreadsheet_would_run_get_a_quote_and_numbers_stay(tmp_path, capsys):
    url = storage_url("json", tmp_path)
    write_untrusted(url)
    assert main(["export", "u", "--storage", url]) == 0
    reader = csv.DictReader(io.StringIO(capsys.readouterr().out, newline=""))
    rows = list(reader)
    assert reader.fieldnames == [*FIXED_START, "q", "n", "t", "tab", "cr"] + [
        "'=1+1",
        "'-v",
        "inf",
        *FIXED_END,
    ]
    cells = ["q", "n", "t", "tab", "cr", "'=1+1", "'-v", "inf", "model_response", "error"]
    assert [[row[name] for name in cells] for row in rows] == [
        ['\'=HYPERLINK("http://x")', "-0.5", "-0.5", "'\t=1", "'\r=1"]
        + [
            "'=cmd|' /C calc'!A0",
            "-0.5",
            '[{"$float": "Infinity"}, {"x": {"$float": "-Infinity"}}]',
        ]
        + ["'-2+3\x1b]0;title\x07\x9b", ""],
        ["'@SUM(A1)", "2", "'+1+2", "'-", "plain", "'=cmd|' /C calc'!A0", "nan"]
        + ['[{"$float": "Infinity"}, {"x": {"$float": "-Infinity"}}]']
        + ["'-2+3\x1b]0;title\x07\x9b", "'@error"],
    ]


def test_jsonl_export_is_strict_json_with_the_stores_tags_and_escapes(tmp_path, capsys):
    url = storage_url("sqlite", tmp_path)
    write_untrusted(url)
    assert main(["export", "u", "--storage", url, "--format", "jsonl"]) == 0
    out = capsys.readouterr().out
    assert not {"\x1b", "\x07", "\x9b"} & set(out)

    def refuse(constant: str) -> None:
        raise ValueError(f"not strict JSON: {constant}")

    rows = [json.loads(line, parse_constant=refuse) for line in out.splitlines()]
    assert [(row["-v"], row["inf"]) for row in rows] == [
        (-0.5, [{"$float": "Infinity"}, {"x": {"$float": "-Infinity"}}]),
        ({"$float": "NaN"}, [{"$float": "Infinity"}, {"x": {"$float": "-Infinity"}}]),
    ]
    assert [row["model_response"] for row in rows] == ["-2+3\x1b]0;title\x07\x9b"] * 2
    assert [row["q"] for row in rows] == [row["q"] for row in UNTRUSTED]
    assert math.isnan(decode_json(out.splitlines()[1])["-v"])  # what dotevals reads back


@pytest.mark.parametrize(
    ("kind", "inside"),
    [
        ("json", "store/u/eval_untrusted.jsonl"),
        ("json", "store/u/new.csv"),
        ("sqlite", "results.db"),
        ("sqlite", "results.db-wal"),
        ("json", "link-to-store-file"),
    ],
)
@pytest.mark.parametrize("command", ["export", "report"])
def test_an_output_file_inside_the_store_is_refused_before_it_is_written(
    tmp_path, capsys, kind, inside, command
):
    url = storage_url(kind, tmp_path)
    write_untrusted(url)
    (tmp_path / "link-to-store-file").symlink_to(tmp_path / "store/u/eval_untrusted.jsonl")
    target = tmp_path / inside
    before = target.read_bytes() if target.exists() else None
    assert main([command, "u", "--storage", url, "-o", str(target)]) == 1
    assert capsys.readouterr() == (
        "",
        f"error: -o {target} is inside the storage {url}: write the file outside it\n",
    )
    assert (target.read_bytes() if target.exists() else None) == before
    assert len(stored_records(url, "u", "eval_untrusted")) == 2
