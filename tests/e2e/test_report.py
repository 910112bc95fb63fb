"""``dotevals report``: the page written from real runs, read as HTML and in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from results_support import CHANGED, write_experiments

import dotevals
from dotevals.cli import main
from dotevals.compare import EvaluationComparison, compare_evaluation
from dotevals.intervals import Estimate

VOID = {"meta", "input", "br", "img", "link", "hr"}
#: The cells of a comparison row, by class.
CELLS = {"evaluation-name", "a", "b", "difference", "interval", "regressed", "improved"}
CELLS |= {"paired", "only-a", "only-b"}
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
        self.ids: list[str] = []
        # each row of the comparison tables: its attributes, and its cells' text by class
        self.comparison: list[tuple[dict[str, str | None], dict[str, str]]] = []
        self.error_bars: list[list[dict[str, str | None]]] = []
        # the text of elements by tag, and of the chart's ticks by class
        self.texts: dict[str, list[str]] = {
            k: [] for k in ("summary", "pre", "td", "p", "h3", "tick")
        }
        self._open: list[tuple[str, str]] = []  # (tag, class) of the elements around
        self._in_shown = False
        self._cell: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.links += [v or "" for k, v in attrs if k in ("src", "href")]
        self.ids += [v or "" for k, v in attrs if k == "id"]
        if tag == "tr" and attributes.get("class") == "row":
            self.rows.append(attributes)
        elif tag == "tr" and attributes.get("class") == "comparison-row":
            self.comparison.append((attributes, {}))
        elif tag == "td" and self.comparison and ("tr", "comparison-row") in self._open:
            self._cell = [c for c in (attributes.get("class") or "").split() if c in CELLS]
            self.comparison[-1][1].update(dict.fromkeys(self._cell, ""))
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
        if tag == "td":
            self._cell = []

    def handle_data(self, data):
        for name in self._cell:
            self.comparison[-1][1][name] += data
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


def chromium(address: str, tmp_path: Path, *flags: str) -> str:
    """The DOM of the page at ``address`` once headless Chromium has loaded it."""
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
        *flags,
        "--dump-dom",
        address,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout


def in_browser(path: Path, fragment: str, tmp_path: Path) -> Page:
    """The page as headless Chromium has it once loaded, its script run."""
    return Page(chromium(path.as_uri() + fragment, tmp_path))


#: A page that loads the report in a frame and writes down how the browser laid out
#: the element SELECTOR: its size, its visibility and the text a person reads in it.
PROBE = """<!DOCTYPE html>
<html><body><pre id="seen"></pre>
<iframe id="report" src="REPORT" width="1200" height="900"></iframe>
<script>
document.getElementById("report").addEventListener("load", function () {
  var element = this.contentDocument.querySelector("SELECTOR");
  var box = element.getBoundingClientRect();
  document.getElementById("seen").textContent = JSON.stringify({
    width: box.width, height: box.height,
    visibility: getComputedStyle(element).visibility, text: element.innerText
  });
});
</script></body></html>
"""


def seen_in_browser(path: Path, selector: str, tmp_path: Path) -> dict[str, Any]:
    """How headless Chromium lays out and shows the element ``selector`` of the page."""
    probe = tmp_path / "probe.html"
    probe.write_text(PROBE.replace("REPORT", path.as_uri()).replace("SELECTOR", selector))
    dom = chromium(probe.as_uri(), tmp_path, "--allow-file-access-from-files")
    seen = re.search(r'<pre id="seen">(.*?)</pre>', dom, re.DOTALL)
    assert seen is not None and seen.group(1), dom
    return json.loads(unescape(seen.group(1)))


SUMS = {("eval_sums", row) for row in range(5)}
LENGTHS = {("eval_lengths", row) for row in range(3)}


def sums_compared(url: str) -> EvaluationComparison:
    """eval_sums of experiment "b" compared with "a"."""
    a, b = (dotevals.load(e, storage=url, evaluation="eval_sums")["eval_sums"] for e in "ab")
    return compare_evaluation("eval_sums", a, b)


def interval(estimate: Estimate) -> str:
    return f"[{estimate.low:.4f}, {estimate.high:.4f}]"


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


def test_browser_shows_the_comparison_table(url, two, tmp_path):
    seen = seen_in_browser(two, "#comparison table", tmp_path)
    assert seen["visibility"] == "visible"
    assert seen["width"] > 600 and seen["height"] > 40
    header, row = seen["text"].splitlines()
    assert header.split("\t")[:7] == [
        *["evaluation", "score", "metric", "A", "B"],
        *["B \u2212 A", "95\u00a0% interval"],
    ]
    difference = sums_compared(url).scores[0].metrics[0].difference
    assert row.split("\t") == [
        *["eval_sums", "exact_match", "accuracy", "0.6000", "0.4000", "-0.2000"],
        *[interval(difference), "2", "1", "5", "0", "0"],
    ]
