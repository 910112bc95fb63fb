"""``dotevals report``: the page written from real runs, as headless Chromium shows it
(the tests skip, saying why, where no ``chromium`` is installed)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from report_page import Page, interval
from results_support import CHANGED, LENGTHS, SUMS, sums_compared

CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)


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


@pytest.mark.parametrize(
    ("fragment", "visible"),
    [
        ("", SUMS | LENGTHS),
        ("#errored", {("eval_sums", 3), ("eval_sums", 4)}),
        ("#changed&evaluation=eval_sums", {("eval_sums", row) for row in CHANGED}),
        ("#evaluation=eval_lengths", LENGTHS),
    ],
)
def test_browser_shows_the_rows_the_filter_leaves(report_ab, tmp_path, fragment, visible):
    found = in_browser(report_ab, fragment, tmp_path)
    assert found.visible() == visible
    assert found.shown == str(len(visible))


def test_browser_shows_the_comparison_table(json_results_url, report_ab, tmp_path):
    seen = seen_in_browser(report_ab, "#comparison table", tmp_path)
    assert seen["visibility"] == "visible"
    assert seen["width"] > 600 and seen["height"] > 40
    header, row = seen["text"].splitlines()
    assert header.split("\t")[:7] == [
        *["evaluation", "score", "metric", "A", "B"],
        *["B \u2212 A", "95\u00a0% interval"],
    ]
    difference = sums_compared(json_results_url).scores[0].metrics[0].difference
    assert row.split("\t") == [
        *["eval_sums", "exact_match", "accuracy", "0.6000", "0.4000", "-0.2000"],
        *[interval(difference), "2", "1", "5", "0", "0"],
    ]


# Names in the address, and a layout that fits -----------------------------------------

#: Evaluations stored as pytest stores them: FILE::NAME, one with a "+" in its name.
NAMED = ["evals/eval_qa.py::eval_qa[gpt+tools]", "evals/eval_qa.py::eval_math"]


@pytest.fixture
def named_report(tmp_path: Path) -> Path:
    from dotevals.cli import main
    from dotevals.models import Record, Result, Score
    from dotevals.storage import EvaluationInfo, get_storage

    url = f"json://{tmp_path / 'store'}"
    storage = get_storage(url)
    storage.create_experiment("e")
    for name in NAMED:
        storage.save_evaluation("e", EvaluationInfo(name, started_at=1.0))
        storage.add_records("e", name, [Record(Result(Score("ok", True)), 0, {"q": 1})])
    storage.close()
    path = tmp_path / "report.html"
    assert main(["report", "e", "--storage", url, "-o", str(path)]) == 0
    return path


@pytest.mark.parametrize(
    ("fragment", "visible", "note"),
    [
        ("#evaluation=eval_math", {(NAMED[1], 0)}, ""),  # the short name the docs give
        ("#evaluation=eval_qa[gpt+tools]", {(NAMED[0], 0)}, ""),  # a "+" is a plus
        ("#evaluation=evals%2Feval_qa.py%3A%3Aeval_qa%5Bgpt%2Btools%5D", {(NAMED[0], 0)}, ""),
        (
            "#evaluation=eval_typo",
            {(NAMED[0], 0), (NAMED[1], 0)},
            'no evaluation named "eval_typo"',
        ),
    ],
)
def test_the_address_names_an_evaluation_by_its_stored_or_short_name(
    named_report, tmp_path, fragment, visible, note
):
    dom = chromium(named_report.as_uri() + fragment, tmp_path)
    found = Page(dom)
    assert found.visible() == visible
    said = re.search(r'<p class="note filter-note" id="filter-note"( hidden="")?>(.*?)</p>', dom)
    assert said is not None
    assert (said.group(1) is None, note in unescape(said.group(2))) == (bool(note), True)


#: A page that loads the report at WIDTH pixels and writes down the page's width, and
#: the width and right edge of the element SELECTOR.
LAYOUT_PROBE = """<!DOCTYPE html>
<html><body style="margin: 0"><pre id="seen"></pre>
<iframe id="report" src="REPORT" width="WIDTH" height="900" style="border: 0"></iframe>
<script>
document.getElementById("report").addEventListener("load", function () {
  var page = this.contentDocument;
  var box = page.querySelector("SELECTOR").getBoundingClientRect();
  document.getElementById("seen").textContent = JSON.stringify({
    page: page.documentElement.scrollWidth, width: box.width, right: box.right
  });
});
</script></body></html>
"""


def layout_in_browser(address: str, selector: str, width: int, tmp_path: Path) -> dict[str, Any]:
    probe = tmp_path / "layout.html"
    page = LAYOUT_PROBE.replace("REPORT", address).replace("SELECTOR", selector)
    probe.write_text(page.replace("WIDTH", str(width)))
    dom = chromium(probe.as_uri(), tmp_path, "--allow-file-access-from-files")
    seen = re.search(r'<pre id="seen">(.*?)</pre>', dom, re.DOTALL)
    assert seen is not None and seen.group(1), dom
    return json.loads(unescape(seen.group(1)))


def test_the_comparison_table_stays_on_a_1024_pixel_page(report_ab, tmp_path):
    seen = layout_in_browser(report_ab.as_uri(), "#comparison table", 1024, tmp_path)
    assert seen["page"] <= 1024  # nothing runs off the page
    assert seen["right"] <= 1024 - 24  # the table fits inside the page's margin


def test_the_errored_filter_keeps_the_evaluation_column_readable(report_ab, tmp_path):
    address = report_ab.as_uri() + "#errored"
    cell = "#rows-table tr:not([hidden]) td.evaluation-name"  # a row the filter shows
    seen = layout_in_browser(address, cell, 1024, tmp_path)
    assert seen["width"] >= 120 and seen["page"] <= 1024  # 10em of its 12px font at least
