"""``dotevals report``: the page written from real runs, read as HTML and in headless Chromium."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from results_support import CHANGED, write_experiments

from dotevals.cli import main
from dotevals.html_report import render, report_data
from dotevals.storage import get_storage

VOID = {"meta", "input", "br", "img", "link", "hr"}
CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)


class Page(HTMLParser):
    """What a page holds: its rows, the row count shown, its scripts, links and chart shapes."""

    def __init__(self, html: str):
        super().__init__()
        self.rows: list[dict[str, str | None]] = []
        self.shown = ""
        self.scripts: list[dict[str, str | None]] = []
        self.links: list[str] = []
        self.rects: list[dict[str, str | None]] = []
        self.error_bars: list[list[dict[str, str | None]]] = []
        # the text of elements by tag, and of the chart's ticks by class
        self.texts: dict[str, list[str]] = {k: [] for k in ("summary", "pre", "td", "p", "tick")}
        self._open: list[tuple[str, str]] = []  # (tag, class) of the elements around
        self._in_shown = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.links += [v or "" for k, v in attrs if k in ("src", "href")]
        if tag == "tr" and attributes.get("class") == "row":
            self.rows.append(attributes)
        elif tag == "script":
            self.scripts.append(attributes)
        elif tag == "rect":
            self.rects.append(attributes)
        elif tag == "g" and attributes.get("class") == "error-bar":
            self.error_bars.append([])
        elif tag == "line" and ("g", "error-bar") in self._open:
            self.error_bars[-1].append(attributes)
        self._in_shown = attributes.get("id") == "rows-shown"
        for key in {tag, attributes.get("class")} & set(self.texts):
            self.texts[key].append("")
        if tag not in VOID:
            self._open.append((tag, attributes.get("class") or ""))

    def handle_endtag(self, tag):
        while self._open and self._open.pop()[0] != tag:
            pass

    def handle_data(self, data):
        if self._in_shown:
            self.shown += data
            self._in_shown = False
        for tag, texts in self.texts.items():
            if texts and any(tag in element for element in self._open):
                texts[-1] += data

    def visible(self) -> set[tuple[str, int]]:
        """(evaluation, row) of each row of the rows table a person sees."""
        return {
            (str(r["data-evaluation"]), int(str(r["data-row"])))
            for r in self.rows
            if "hidden" not in r
        }


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    url = f"json://{tmp_path_factory.mktemp('results') / 'store'}"
    write_experiments(url)
    return url


@pytest.fixture(scope="module")
def two(url, tmp_path_factory) -> Path:
    """The report of experiments "a" and "b"."""
    path = tmp_path_factory.mktemp("report") / "report.html"
    assert main(["report", "a", "b", "--storage", url, "-o", str(path)]) == 0
    return path


def page(path: Path) -> Page:
    return Page(path.read_text(encoding="utf-8"))


def in_browser(path: Path, fragment: str, tmp_path: Path) -> Page:
    """The page as headless Chromium has it once loaded, its script run."""
    if CHROMIUM is None:
        pytest.skip("no chromium on PATH: the browser tests need Debian's chromium package")
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium'}",
        "--dump-dom",
        path.as_uri() + fragment,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    return Page(result.stdout)


SUMS = {("eval_sums", row) for row in range(5)}
LENGTHS = {("eval_lengths", row) for row in range(3)}


def test_report_command_writes_a_page_that_needs_nothing_else(url, tmp_path, capsys):
    path = tmp_path / "out.html"
    assert main(["report", "a", "b", "--storage", url, "-o", str(path)]) == 0
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


def test_rows_marked_changed_between_experiments(two):
    rows = {(r["data-evaluation"], int(str(r["data-row"]))): r for r in page(two).rows}
    changed = {key for key, r in rows.items() if r["data-changed"] == "1"}
    # eval_lengths ran in "a" only: each of its rows differs
    assert changed == {("eval_sums", row) for row in CHANGED} | LENGTHS
    errored = {key for key, r in rows.items() if r["data-errored"] == "1"}
    assert errored == {("eval_sums", 3), ("eval_sums", 4)}


def test_summary_side_by_side_with_a_bar_per_value(two):
    found = page(two)
    cells = found.texts["td"]
    start = cells.index("exact_match")
    assert cells[start : start + 4] == ["exact_match", "accuracy", "0.6000", "0.4000"]
    # eval_sums: one bar per experiment on an axis to 1; eval_lengths: "a" only,
    # its mean of 5/3 on an axis to 2
    assert len(found.rects) == 3
    a, b, lengths = (float(str(r["width"])) for r in found.rects)
    assert a / b == pytest.approx(0.6 / 0.4)
    assert lengths / a == pytest.approx((5 / 3 / 2) / 0.6)
    assert [" ".join(t.split()) for t in found.texts["tick"]] == [
        "0",
        "0.25",
        "0.5",
        "0.75",
        "1",
    ] + [
        "0",
        "0.5",
        "1",
        "1.5",
        "2",
    ]
    assert found.error_bars == []


def test_error_bars_drawn_where_a_value_has_an_interval(url):
    storage = get_storage(url)
    try:
        data = report_data(storage, url, ["a", "b"])
    finally:
        storage.close()
    (sums,) = (e for e in data["evaluations"] if e["name"] == "eval_sums")
    (accuracy,) = sums["metrics"]
    accuracy["entries"][0].update(low=0.5, high=0.7)
    accuracy["entries"][1].update(low=0.3, high=0.5)
    found = Page(render(data))
    assert len(found.error_bars) == 2
    for rect, lines, (low, high), value in zip(
        found.rects, found.error_bars, [(0.5, 0.7), (0.3, 0.5)], [0.6, 0.4], strict=False
    ):
        x, width = float(str(rect["x"])), float(str(rect["width"]))
        span = lines[0]
        assert (float(str(span["x1"])) - x) / width == pytest.approx(low / value)
        assert (float(str(span["x2"])) - x) / width == pytest.approx(high / value)
    assert "[0.5000, 0.7000]" in " ".join(found.texts["td"])


def test_errors_grouped_by_type_with_tracebacks(two):
    found = page(two)
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


def test_max_rows_caps_the_rows_with_a_note(url, tmp_path):
    path = tmp_path / "r.html"
    assert main(["report", "a", "--max-rows", "2", "--storage", url, "-o", str(path)]) == 0
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
def test_report_errors_name_what_to_change(url, tmp_path, capsys, argv, message):
    path = tmp_path / "r.html"
    assert main(["report", *argv, "--storage", url, "-o", str(path)]) == 1
    assert capsys.readouterr() == ("", f"error: {message.format(url=url)}\n")
    assert not path.exists()


@pytest.mark.parametrize(
    ("fragment", "visible"),
    [
        ("", SUMS | LENGTHS),
        ("#errored", {("eval_sums", 3), ("eval_sums", 4)}),
        ("#changed&evaluation=eval_sums", {("eval_sums", row) for row in CHANGED}),
        ("#evaluation=eval_lengths", LENGTHS),
    ],
)
def test_browser_shows_the_rows_the_filter_leaves(two, tmp_path, fragment, visible):
    found = in_browser(two, fragment, tmp_path)
    assert found.visible() == visible
    assert found.shown == str(len(visible))
