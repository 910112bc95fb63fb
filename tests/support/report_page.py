"""A page written by ``dotevals report``, read as HTML."""

from __future__ import annotations

from html.parser import HTMLParser

from dotevals.intervals import Estimate

VOID = {"meta", "input", "br", "img", "link", "hr"}
#: The cells of a comparison row, by class.
CELLS = {"evaluation-name", "a", "b", "difference", "interval", "regressed", "improved"}
CELLS |= {"paired", "only-a", "only-b"}


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


def interval(estimate: Estimate) -> str:
    """An interval as the page shows it."""
    return f"[{estimate.low:.4f}, {estimate.high:.4f}]"
