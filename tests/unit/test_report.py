"""``dotevals report``: the page written from real runs, read as HTML."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import results_support
from report_page import Page, interval
from results_support import CHANGED, LENGTHS, SUMS, Model, sums_compared
from stores import storage_url

import dotevals
from dotevals import Result, Score, foreach
from dotevals._report.html import MAX_DETAIL, MAX_ERROR_GROUPS, MAX_ERRORS_SHOWN
from dotevals.cli import main
from dotevals.intervals import Estimate
from dotevals.metrics import accuracy
from dotevals.storage import get_storage


def page(path: Path) -> Page:
    return Page(path.read_text(encoding="utf-8"))


def test_report_command_writes_a_page_that_needs_nothing_else(json_results_url, tmp_path, capsys):
    path = tmp_path / "out.html"
    assert main(["report", "a", "b", "--storage", json_results_url, "-o", str(path)]) == 0
    assert capsys.readouterr().out == (
        f"Wrote the report of 'a', 'b' to {path}\nOpen it in a browser: {path.as_uri()}\n"
    )
    html = path.read_text(encoding="utf-8")
    found = Page(html)
    assert found.scripts == [{}]  # one inline script, no src
    assert all(link.startswith("#") for link in found.links)
    assert "<link" not in html and "@import" not in html and "url(" not in html
    # a dataset value holding markup is shown as text
    assert "What is &lt;script&gt;alert(3)&lt;/script&gt; + 3?" in html
    assert found.visible() == SUMS | LENGTHS
    assert found.shown == "8"


def test_rows_marked_changed_between_experiments(report_ab):
    rows = {(r["data-evaluation"], int(str(r["data-row"]))): r for r in page(report_ab).rows}
    changed = {key for key, r in rows.items() if r["data-changed"] == "1"}
    # eval_lengths ran in "a" only: each of its rows differs
    assert changed == {("eval_sums", row) for row in CHANGED} | LENGTHS
    errored = {key for key, r in rows.items() if r["data-errored"] == "1"}
    assert errored == {("eval_sums", 3), ("eval_sums", 4)}


# eval_sums: 3 of 5 rows right in "a", 2 of 5 in "b"; eval_lengths: lengths 3, 2, 0 in "a"
SUMS_A, SUMS_B = Estimate.wilson(3, 5), Estimate.wilson(2, 5)
LENGTHS_A = Estimate.of_mean([3, 2, 0])


def test_summary_shows_each_value_with_its_interval(report_ab):
    cells = page(report_ab).texts["td"]
    start = cells.index("exact_match")
    assert cells[start : start + 4] == [
        "exact_match",
        "accuracy",
        f"0.6000 {interval(SUMS_A)}",
        f"0.4000 {interval(SUMS_B)}",
    ]
    # the Wilson interval of 3/5, as published tables give it
    assert interval(SUMS_A) == "[0.2307, 0.8824]"
    start = cells.index("length")
    assert cells[start : start + 4] == ["length", "mean", f"1.6667 {interval(LENGTHS_A)}", "-"]


def test_summary_side_by_side_with_a_bar_and_an_error_bar_per_value(report_ab):
    found = page(report_ab)
    # eval_sums: one bar per experiment on an axis to 1; eval_lengths: "a" only, its
    # mean of 5/3 on an axis to 5, for its interval reaches above 3
    assert len(found.rects) == 3
    a, b, lengths = (float(str(r["width"])) for r in found.rects)
    assert a / b == pytest.approx(0.6 / 0.4)
    assert lengths / a == pytest.approx((5 / 3 / 5) / 0.6)
    assert [" ".join(t.split()) for t in found.texts["tick"]] == [
        *["0", "0.25", "0.5", "0.75", "1"],
        *["0", "1.25", "2.5", "3.75", "5"],
    ]
    assert len(found.error_bars) == 3
    for rect, lines, estimate in zip(
        found.rects, found.error_bars, [SUMS_A, SUMS_B, LENGTHS_A], strict=True
    ):
        x, y, width = (float(str(rect[k])) for k in ("x", "y", "width"))
        span, left, right = ({k: float(str(v)) for k, v in line.items()} for line in lines)
        # the span from low to high, across the bar's end, at the bar's height
        assert span["x1"] < x + width < span["x2"]
        assert span["y1"] == span["y2"] > y
        # a whisker at each bound; a bound below 0 is drawn at the axis
        assert (left["x1"], left["x2"], right["x1"], right["x2"]) == (
            span["x1"],
            span["x1"],
            span["x2"],
            span["x2"],
        )
        assert (span["x1"] - x) / width == pytest.approx(max(0, estimate.low) / estimate.value)
        assert (span["x2"] - x) / width == pytest.approx(estimate.high / estimate.value)
    assert LENGTHS_A.low < 0  # the case of a bound cut at the axis is covered


def test_summary_takes_the_intervals_stored_with_the_evaluation(json_results_url, tmp_path):
    """A finished evaluation's stored intervals are shown (a custom metric's could not be
    computed again by the command); a running one's are computed from its records."""
    copy = tmp_path / "store"
    shutil.copytree(json_results_url.removeprefix("json://"), copy)
    stored = get_storage(f"json://{copy}")
    try:
        info = stored.evaluation_info("a", "eval_sums")
        assert info is not None and info.estimates is not None
        info.estimates["exact_match"]["accuracy"].update(low=0.125, high=0.875)
        stored.save_evaluation("a", info)
        running = stored.evaluation_info("b", "eval_sums")
        assert running is not None
        running.status, running.metrics, running.estimates = "running", None, None
        stored.save_evaluation("b", running)
    finally:
        stored.close()
    path = tmp_path / "r.html"
    assert main(["report", "a", "b", "--storage", f"json://{copy}", "-o", str(path)]) == 0
    cells = page(path).texts["td"]
    start = cells.index("exact_match")
    assert cells[start + 2 : start + 4] == [
        "0.6000 [0.1250, 0.8750]",
        f"0.4000 {interval(SUMS_B)}",
    ]


def test_no_comparison_with_one_experiment(json_results_url, tmp_path):
    path = tmp_path / "r.html"
    assert main(["report", "a", "--storage", json_results_url, "-o", str(path)]) == 0
    found = page(path)
    assert "summary" in found.ids
    assert "comparison" not in found.ids and "#comparison" not in found.links
    assert found.comparison == []


def test_comparison_of_two_experiments_is_compare_evaluations(json_results_url, report_ab):
    found = page(report_ab)
    assert "comparison" in found.ids and "#comparison" in found.links
    compared = sums_compared(json_results_url)
    ((score,),) = [compared.scores]
    (accuracy,) = score.metrics
    difference = accuracy.difference
    assert difference.method == "paired normal" and difference.low < 0 < difference.high
    ((attributes, cells),) = found.comparison
    assert (attributes["data-evaluation"], attributes["data-score"], attributes["data-metric"]) == (
        "eval_sums",
        "exact_match",
        "accuracy",
    )
    assert cells == {
        "evaluation-name": "eval_sums",
        "a": f"{accuracy.a.value:.4f}",
        "b": f"{accuracy.b.value:.4f}",
        "difference": f"{difference.value:+.4f}",
        "interval": interval(difference),
        "regressed": str(len(score.regressed)),
        "improved": str(len(score.improved)),
        "paired": str(compared.paired_rows),
        "only-a": str(compared.only_in_a),
        "only-b": str(compared.only_in_b),
    }
    # what those numbers are on this data: rows 1 and 2 changed, row 4 errored in "b"
    assert (cells["a"], cells["b"], cells["difference"]) == ("0.6000", "0.4000", "-0.2000")
    assert (cells["regressed"], cells["improved"], cells["paired"]) == ("2", "1", "5")
    notes = [" ".join(p.split()) for p in found.texts["p"]]
    assert "Evaluations only in A: eval_lengths." in notes


def test_comparison_counts_rows_only_one_side_ran(json_results_url, tmp_path):
    """Experiment "c" ran the first 3 rows of eval_sums as "a" did: 2 rows are only in "a"."""
    copy = tmp_path / "store"
    shutil.copytree(json_results_url.removeprefix("json://"), copy)
    partial = f"json://{copy}"
    dotevals.run(
        results_support.eval_sums,
        experiment="c",
        storage=partial,
        samples=3,
        progress=False,
        model=Model({1}, {}),
    )
    path = tmp_path / "r.html"
    assert main(["report", "a", "b", "c", "--storage", partial, "-o", str(path)]) == 0
    found = page(path)
    # each experiment against the first: a -> b, then a -> c
    assert [a["data-evaluation"] for a, _ in found.comparison] == ["eval_sums", "eval_sums"]
    against_c = found.comparison[1][1]
    assert (against_c["paired"], against_c["only-a"], against_c["only-b"]) == ("3", "2", "0")
    assert (against_c["difference"], against_c["regressed"], against_c["improved"]) == (
        "+0.0000",
        "0",
        "0",
    )
    headings = [" ".join(t.split()) for t in found.texts["h3"]]
    assert [h for h in headings if h.startswith("A ")] == ["A a → B b", "A a → B c"]


def test_errors_grouped_by_type_with_tracebacks(report_ab):
    found = page(report_ab)
    summaries = [" ".join(text.split()) for text in found.texts["summary"]]
    assert summaries == [
        "a: ValueError (1 row)",
        "b: ValueError (1 row)",
        "b: ZeroDivisionError (1 row)",
    ]
    tracebacks = found.texts["pre"]
    assert len(tracebacks) == 3
    assert all("Traceback (most recent call last)" in t for t in tracebacks)
    assert "raise self.raises[row]" in tracebacks[2]
    assert tracebacks[2].rstrip().endswith("ZeroDivisionError: no answer to row 4")


def test_max_rows_caps_the_rows_with_a_note(json_results_url, tmp_path):
    path = tmp_path / "r.html"
    assert (
        main(["report", "a", "--max-rows", "2", "--storage", json_results_url, "-o", str(path)])
        == 0
    )
    found = page(path)
    assert found.visible() == {
        ("eval_sums", 0),
        ("eval_sums", 1),
        ("eval_lengths", 0),
        ("eval_lengths", 1),
    }
    notes = [" ".join(p.split()) for p in found.texts["p"]]
    assert "eval_sums: the first 2 of 5 rows are in this page (--max-rows)." in notes
    assert "eval_lengths: the first 2 of 3 rows are in this page (--max-rows)." in notes


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["a", "a"], "an experiment is given twice: give each experiment once"),
        (["a", "zz"], "experiment 'zz' not found in {url} (see 'dotevals list --storage {url}')"),
        (["a", "--max-rows", "0"], "--max-rows must be at least 1, got 0"),
    ],
)
def test_report_errors_name_what_to_change(json_results_url, tmp_path, capsys, argv, message):
    path = tmp_path / "r.html"
    assert main(["report", *argv, "--storage", json_results_url, "-o", str(path)]) == 1
    assert capsys.readouterr() == ("", f"error: {message.format(url=json_results_url)}\n")
    assert not path.exists()


# Untrusted rows: any type, any size -----------------------------------------------------
def report_of(url: str, tmp_path: Path) -> Page:
    path = tmp_path / "r.html"
    assert main(["report", "u", "--storage", url, "-o", str(path)]) == 0
    return page(path)


def test_a_response_that_is_not_text_is_shown_as_its_value(tmp_path):
    @foreach("q", [(42,), ({"answer": [1, 2]},), (None,)])
    def eval_any(q):
        return Result(Score("s", True), model_response=q)

    url = storage_url("json", tmp_path)
    dotevals.run(eval_any, experiment="u", storage=url, progress=False)
    report_of(url, tmp_path)
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert '<div class="response">42</div>' in html
    assert '<div class="response">{&#34;answer&#34;: [1, 2]}</div>' in html
    assert html.count('class="response"') == 2


def test_every_text_in_the_page_is_bounded_and_errors_group_by_type(tmp_path):
    """60 rows with 100 kB errors (raised, and set in Results without a colon), inputs,
    responses and score names: the page keeps a few kB of each, the tracebacks their
    ends, and the errors make one group per type."""
    big = "x" * 100_000

    @foreach("q", range(60))
    def eval_big(q):
        if q < 30:
            raise RuntimeError(big + f"end of row {q}")
        scores = Score(big + str(q), True), Score("s", True, [accuracy()])
        return Result(*scores, error=big + str(q) if q < 40 else None, model_response=big)

    url = storage_url("sqlite", tmp_path)
    dotevals.run(eval_big, experiment="u", storage=url, progress=False)
    found = report_of(url, tmp_path)
    size = (tmp_path / "r.html").stat().st_size
    assert size < 500_000  # the rows hold more than 10 MB
    summaries = [" ".join(text.split()) for text in found.texts["summary"]]
    assert summaries == ["RuntimeError (30 rows)", "Result.error (10 rows)"]
    tracebacks = found.texts["pre"]
    assert len(tracebacks) == MAX_ERRORS_SHOWN + 10
    assert all(len(text) <= MAX_DETAIL for text in tracebacks)
    assert tracebacks[0].startswith("\u2026\n") and tracebacks[0].endswith("end of row 0")


def test_the_page_shows_the_most_frequent_error_types_then_the_others_together(tmp_path):
    @foreach("q", range(MAX_ERROR_GROUPS + 5))
    def eval_types(q):
        raise type(f"Error{q}", (Exception,), {})("boom")

    url = storage_url("json", tmp_path)
    dotevals.run(eval_types, experiment="u", storage=url, progress=False)
    summaries = [" ".join(text.split()) for text in report_of(url, tmp_path).texts["summary"]]
    assert len(summaries) == MAX_ERROR_GROUPS
    assert summaries[-1] == "other error types (6 rows)"
