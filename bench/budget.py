"""The performance budget: each target as a figure per round, checked on its median.

Every figure is computed within one round (runs that ran next to each other),
so a ratio never compares a run of a quiet minute with one of a busy minute;
the median over rounds is checked against the budget and the range printed.
"""

from __future__ import annotations

import contextlib
import re
import statistics
from dataclasses import dataclass
from typing import Any

from bench.measure import Figures

Results = dict[str, dict[str, Figures]]  # workload -> variant label -> figures
#: A line in which a run speaks of the machine's cores (the oversubscription notice).
CORES_LINE = re.compile(r"\bcores?\b", re.IGNORECASE)
CHOSEN = re.compile(r"dotevals: (\d+) workers|dotevals: sync evaluations run in the main process")


@dataclass
class Check:
    """One budgeted figure (or, with no ``limit``, one shown for information)."""

    target: str
    figure: str
    values: list[float]  # one per round
    limit: float | None
    unit: str
    note: str = ""
    exact: bool = False  # every value must equal the limit (a count of lines)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def met(self) -> bool | None:
        if self.limit is None:
            return None
        if self.exact:
            return all(value == self.limit for value in self.values)
        return self.median <= self.limit

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "figure": self.figure,
            "median": self.median,
            "min": min(self.values),
            "max": max(self.values),
            "unit": self.unit,
            "budget": self.budget,
            "met": self.met,
            "note": self.note,
        }

    @property
    def budget(self) -> str:
        if self.limit is None:
            return "(information)"
        return f"{'=' if self.exact else '<='} {_number(self.limit, self.unit)}"


def _number(value: float, unit: str) -> str:
    if unit == "x":
        return f"{value:.2f}x"
    if unit == " s":
        return f"{value:.2f} s"
    return f"{value:.0f}{unit}" if unit else f"{value:g}"


def describe(check: dict[str, Any]) -> tuple[str, str]:
    """(measured, range) as text, from ``Check.as_dict()`` (also used on saved results)."""
    unit = check["unit"]
    return _number(check["median"], unit), (
        f"{_number(check['min'], unit)} to {_number(check['max'], unit)}"
    )


def status(check: dict[str, Any]) -> str:
    return {True: "ok", False: "MISS", None: "info"}[check["met"]]


def checks(results: Results) -> list[Check]:
    """Every budget this run has the figures for, in the order of the targets."""

    def series(workload: str, label: str, key: str = "wall") -> list[float]:
        figures = results.get(workload, {}).get(label)
        if figures is None:
            raise LookupError(label)
        return [getattr(run, key) for run in figures.runs]

    def ratio(workload: str, a: str, b: str, key: str = "wall") -> list[float]:
        return [
            x / y for x, y in zip(series(workload, a, key), series(workload, b, key), strict=True)
        ]

    found: list[Check] = []

    def add(make: Any) -> None:
        with contextlib.suppress(LookupError):  # a workload left out with --only, or no Dask
            found.append(make())

    add(
        lambda: Check(
            "plugin load",
            "one ordinary test: pytest with dotevals / pytest alone (wall)",
            ratio("plugin-load", "pytest with dotevals only", "pytest, no plugins"),
            1.10,
            "x",
        )
    )
    add(
        lambda: Check(
            "plugin load",
            "the same with this environment's other plugins loaded in both (Hypothesis, xdist)",
            ratio("plugin-load", "pytest, all plugins", "pytest, all plugins but dotevals"),
            None,
            "x",
        )
    )
    add(
        lambda: Check(
            "fixed cost",
            "2 rows inline / one ordinary test with dotevals (wall)",
            ratio("fixed-cost", "2 rows, inline", "one ordinary test, with dotevals"),
            1.25,
            "x",
        )
    )
    add(lambda: _workers_fixed_cost(series))
    add(lambda: _per_row(series))
    add(
        lambda: Check(
            "linear cpu-tiny (kept)",
            "cpu-tiny wall: 20000 rows / 5000 rows",
            ratio("cpu-tiny", "dotevals, 20000 rows", "dotevals, 5000 rows"),
            4.5,
            "x",
        )
    )
    add(
        lambda: Check(
            "cpu-heavy",
            "--workers 2 / loky direct with 2 workers (wall, 2000 rows x 5 ms)",
            ratio("cpu-heavy", "dotevals --workers 2", "loky direct, 2 workers"),
            1.08,
            "x",
        )
    )
    add(lambda: _auto(results, series))
    add(
        lambda: Check(
            "cpu-heavy",
            "--workers 2 / pytest-xdist -n 2 (wall)",
            ratio("cpu-heavy", "dotevals --workers 2", "pytest-xdist -n 2"),
            1.0,
            "x",
        )
    )
    add(
        lambda: Check(
            "oversubscription",
            "--workers 8 / --workers 2 on cpu-heavy (wall)",
            ratio("cpu-heavy", "dotevals --workers 8", "dotevals --workers 2"),
            1.10,
            "x",
        )
    )
    add(
        lambda: Check(
            "oversubscription",
            "lines of a --workers 8 run that speak of the cores (each run)",
            [
                _cores_lines(run.stdout)
                for run in _runs(results, "cpu-heavy", "dotevals --workers 8")
            ],
            1,
            "",
            exact=True,
        )
    )
    add(
        lambda: Check(
            "async-io (kept)",
            "default (Adaptive), 2000 x 50 ms: rows s",
            series("async-io", "default (Adaptive), 2000 rows", "rows"),
            3.0,
            " s",
        )
    )
    add(
        lambda: Check(
            "async-io (kept)",
            "SlidingWindow(100), 2000 x 50 ms: rows s",
            series("async-io", "SlidingWindow(100), 2000 rows", "rows"),
            1.5,
            " s",
        )
    )
    add(
        lambda: Check(
            "async-io",
            "time per row: 20000 rows / 2000 rows (rows s / rows)",
            [
                x / 10
                for x in ratio(
                    "async-io",
                    "default (Adaptive), 20000 rows",
                    "default (Adaptive), 2000 rows",
                    "rows",
                )
            ],
            1.0,
            "x",
        )
    )
    add(
        lambda: Check(
            "streaming memory (kept)",
            "main-process peak: 200000 rows - 20000 rows",
            [
                a - b
                for a, b in zip(
                    series("streaming", "200000 rows", "main_peak_mb"),
                    series("streaming", "20000 rows", "main_peak_mb"),
                    strict=True,
                )
            ],
            30,
            " MB",
        )
    )
    add(
        lambda: Check(
            "Dask",
            "dotevals on Dask / Dask's client.map of the same rows (wall, 1000 rows x 5 ms)",
            ratio("dask", "dotevals on Dask", "Dask client.map"),
            1.10,
            "x",
        )
    )
    return found


def _runs(results: Results, workload: str, label: str) -> list[Any]:
    figures = results.get(workload, {}).get(label)
    if figures is None:
        raise LookupError(label)
    return figures.runs


def _cores_lines(output: str) -> float:
    return float(sum(1 for line in output.splitlines() if CORES_LINE.search(line)))


def _workers_fixed_cost(series: Any) -> Check:
    """(--workers 2 − inline) − (loky direct − plain Python), all on 2 tiny rows."""
    extra = [
        a - b
        for a, b in zip(
            series("fixed-cost", "2 rows, --workers 2"),
            series("fixed-cost", "2 rows, inline"),
            strict=True,
        )
    ]
    loky = [
        a - b
        for a, b in zip(
            series("fixed-cost", "loky direct, 2 workers, 2 rows"),
            series("fixed-cost", "plain Python, 2 rows"),
            strict=True,
        )
    ]
    return Check(
        "fixed cost",
        "--workers 2: extra over inline - loky direct's own start-up (s)",
        [e - s for e, s in zip(extra, loky, strict=True)],
        0.1,
        " s",
        note=f"extra over inline {statistics.median(extra):.2f} s, "
        f"loky start-up {statistics.median(loky):.2f} s",
    )


def _per_row(series: Any) -> Check:
    """The main process's cost per row: the slope from 5000 to 20000 rows of
    (dotevals − plain Python) end to end, so that start-up costs cancel."""
    d5, p5 = (
        series("cpu-tiny", "dotevals, 5000 rows"),
        series("cpu-tiny", "plain Python, 5000 rows"),
    )
    d20, p20 = (
        series("cpu-tiny", "dotevals, 20000 rows"),
        series("cpu-tiny", "plain Python, 20000 rows"),
    )
    slope = [((a - b) - (c - d)) / 15000 * 1e6 for a, b, c, d in zip(d20, p20, d5, p5, strict=True)]
    rows20 = series("cpu-tiny", "dotevals, 20000 rows", "rows")
    loop20 = series("cpu-tiny", "plain Python, 20000 rows", "rows")
    in_run = [(a - b) / 20000 * 1e6 for a, b in zip(rows20, loop20, strict=True)]
    whole = [(a - b) / 20000 * 1e6 for a, b in zip(d20, p20, strict=True)]
    return Check(
        "per-row cost",
        "cpu-tiny: (dotevals - plain Python) per extra row, 5000 -> 20000 rows (us)",
        slope,
        25,
        " us",
        note=f"at 20000 rows: {statistics.median(in_run):.0f} us/row counting the evaluation's "
        f"own time only, {statistics.median(whole):.0f} us/row end to end with start-up",
    )


def _auto(results: Results, series: Any) -> Check:
    """--workers auto against whichever of --workers 1 and 2 has the lower median."""
    fixed = {n: series("cpu-heavy", f"dotevals --workers {n}") for n in (1, 2)}
    best = min(fixed, key=lambda n: statistics.median(fixed[n]))
    auto = series("cpu-heavy", "dotevals --workers auto")
    chosen = {
        match.group(1) or "1"
        for run in _runs(results, "cpu-heavy", "dotevals --workers auto")
        for match in CHOSEN.finditer(run.stdout)
    }
    return Check(
        "cpu-heavy",
        f"--workers auto / the best fixed count (--workers {best}) (wall)",
        [a / b for a, b in zip(auto, fixed[best], strict=True)],
        1.05,
        "x",
        note=f"auto chose {', '.join(sorted(chosen)) or '?'} worker(s); the budget allows "
        "this machine's 5 % noise between neighbouring runs",
    )
