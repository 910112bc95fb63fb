"""``python -m bench``: run the workloads, print the table, write JSON, a plot and the docs page.

Options: ``--repeat N`` (measured runs per variant, default 3; one warm-up round
is made first and left out), ``--only cpu-heavy,async-io``, ``--no-docs``,
``--docs-only`` (rewrite the docs page from the last saved results).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import psutil

from bench.measure import REPO, Figures, run_command
from bench.work import calibrate
from bench.workloads import (
    DASK,
    Workload,
    command,
    dask_cluster,
    dumps,
    evaluation_seconds,
    worker_pids,
    workloads,
)

RESULTS = REPO / "bench" / "results"
DOCS = REPO / "docs"


def measure(workload: Workload, repeat: int, dask: str | None) -> dict[str, Figures]:
    """Run every variant ``repeat`` times after a warm-up, in rounds (one run of each
    variant per round), so that a slow spell of a shared machine hits all variants alike."""
    variants = [v for v in workload.variants if dask is not None or DASK not in v.options]
    workload.variants = variants
    figures = {variant.label: Figures() for variant in workload.variants}
    evaluation: dict[str, list[float]] = {variant.label: [] for variant in workload.variants}
    for attempt in range(repeat + 1):
        for variant in workload.variants:
            result = figures[variant.label]
            with tempfile.TemporaryDirectory(prefix="dotevals-bench-") as tmp:
                directory = Path(tmp)
                argv = command(workload, variant, directory, dask)
                run = run_command(argv, directory, variant.env)
                seconds = evaluation_seconds(variant, directory, run.stdout)
                if workload.name == "many-evaluations" and variant.workers > 1:
                    result.extra["worker_processes"] = worker_pids(directory)
            if attempt == 0:
                continue  # warm-up
            result.runs.append(run)
            if seconds is not None:
                evaluation[variant.label].append(seconds)
    for variant in workload.variants:
        result, seconds = figures[variant.label], evaluation[variant.label]
        if seconds:
            result.extra.update(
                evaluation_median=statistics.median(seconds),
                evaluation_min=min(seconds),
                evaluation_max=max(seconds),
            )
        print(f"  {workload.name:17} {variant.label:34} {describe(result)}", flush=True)
    return figures


def describe(figures: Figures) -> str:
    wall = figures.stat("wall")
    text = f"wall {wall['median']:.2f}s [{wall['min']:.2f}-{wall['max']:.2f}]"
    if "evaluation_median" in figures.extra:
        text += f", rows {figures.extra['evaluation_median']:.2f}s"
    return text


def summarise(workload: Workload, figures: dict[str, Figures]) -> list[dict[str, Any]]:
    """One row of the table per variant."""
    baseline = next(
        (
            f.extra.get("evaluation_median")
            for label, f in figures.items()
            if "--workers 1" in label
        ),
        None,
    )
    rows = []
    for variant in workload.variants:
        f = figures[variant.label]
        rows_count = int(variant.env.get("BENCH_ROWS", workload.rows))
        rows_count *= int(variant.env.get("BENCH_EVALUATIONS", 1))
        seconds = f.extra.get("evaluation_median") or f.stat("wall")["median"]
        work = rows_count * workload.row_seconds / max(1, variant.workers)
        rows.append(
            {
                "workload": workload.name,
                "variant": variant.label,
                "rows": rows_count,
                "wall_s": f.stat("wall"),
                "rows_s": f.extra.get("evaluation_median"),
                "rows_per_s": rows_count / seconds,
                "speedup_vs_1_worker": (baseline / seconds)
                if baseline and "dotevals" in variant.label and workload.name == "cpu-heavy"
                else None,
                "overhead_us_per_row": max(0.0, (seconds - work) / rows_count * 1e6),
                "main_peak_mb": f.stat("main_peak_mb")["median"],
                "workers_peak_mb": f.stat("workers_peak_mb")["median"],
                **{k: v for k, v in f.extra.items() if not k.startswith("evaluation_")},
            }
        )
    return rows


def budget(table: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The performance budget, checked against this run's figures."""
    by = {(row["workload"], row["variant"]): row for row in table}

    def get(workload: str, variant: str, key: str) -> float | None:
        row = by.get((workload, variant))
        if row is None:
            return None
        value = row[key]
        return value["median"] if isinstance(value, dict) else value

    checks = []

    def check(
        name: str, value: float | None, limit: float, higher_is_better: bool, unit: str
    ) -> None:
        if value is None:
            return
        ok = value >= limit if higher_is_better else value <= limit
        sign = ">=" if higher_is_better else "<="
        checks.append(
            {
                "budget": name,
                "measured": round(value, 3),
                "target": f"{sign} {limit}{unit}",
                "met": ok,
            }
        )

    w1 = get("cpu-heavy", "dotevals --workers 1", "rows_s")
    w2 = get("cpu-heavy", "dotevals --workers 2", "rows_s")
    loky = get("cpu-heavy", "loky direct, 2 workers", "rows_s")
    if w1 and w2:
        check("cpu-heavy: --workers 2 speedup over --workers 1", w1 / w2, 1.85, True, "x")
    if w2 and loky:
        check("cpu-heavy: --workers 2 time / loky direct", w2 / loky, 1.05, False, "")
    xdist = get("cpu-heavy", "pytest-xdist -n 2", "wall_s")
    ours = get("cpu-heavy", "dotevals --workers 2", "wall_s")
    if xdist and ours:
        check("cpu-heavy: --workers 2 wall / xdist -n 2 wall", ours / xdist, 1.0, False, "")
    tiny20 = get("cpu-tiny", "dotevals, 20000 rows", "wall_s")
    tiny5 = get("cpu-tiny", "dotevals, 5000 rows", "wall_s")
    check("cpu-tiny: 20000 rows end to end", tiny20, 3.0, False, " s")
    if tiny20 and tiny5:
        check("cpu-tiny: time(20000) / time(5000)", tiny20 / tiny5, 4.5, False, "")
    check(
        "async-io: default, 2000 x 50 ms",
        get("async-io", "default (Adaptive)", "rows_s"),
        3.0,
        False,
        " s",
    )
    check(
        "async-io: SlidingWindow(100)",
        get("async-io", "SlidingWindow(100)", "rows_s"),
        1.5,
        False,
        " s",
    )
    small = get("streaming", "20000 rows", "main_peak_mb")
    large = get("streaming", "200000 rows", "main_peak_mb")
    if small and large:
        check("streaming: main peak growth 20000 -> 200000 rows", large - small, 30, False, " MB")
    return checks


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": datetime.date.today().isoformat(),
        "platform": platform.platform(),
        "cpu": model or platform.processor(),
        "physical_cores": psutil.cpu_count(logical=False),
        "logical_cores": psutil.cpu_count(logical=True),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
    }


def format_table(table: list[dict[str, Any]]) -> list[str]:
    headers = [
        "workload",
        "variant",
        "wall s (min-max)",
        "rows s",
        "rows/s",
        "speedup",
        "overhead us/row",
        "main MB",
        "workers MB",
    ]
    lines = []
    for row in table:
        wall = row["wall_s"]
        lines.append(
            [
                row["workload"],
                row["variant"]
                + (
                    f" ({row['worker_processes']} worker processes in all)"
                    if "worker_processes" in row
                    else ""
                ),
                f"{wall['median']:.2f} ({wall['min']:.2f}-{wall['max']:.2f})",
                f"{row['rows_s']:.2f}" if row["rows_s"] is not None else "-",
                f"{row['rows_per_s']:.0f}",
                f"{row['speedup_vs_1_worker']:.2f}x" if row["speedup_vs_1_worker"] else "-",
                f"{row['overhead_us_per_row']:.0f}",
                f"{row['main_peak_mb']:.0f}",
                f"{row['workers_peak_mb']:.0f}",
            ]
        )
    widths = [max(len(h), *(len(r[i]) for r in lines)) for i, h in enumerate(headers)]
    out = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    out += [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in lines
    ]
    return out


def plot(table: list[dict[str, Any]], path: Path) -> bool:
    """Throughput of cpu-heavy against worker count, PNG. False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    ours = [
        (int(r["variant"].split()[-1]), r["rows_per_s"])
        for r in table
        if r["workload"] == "cpu-heavy" and r["variant"].startswith("dotevals --workers")
    ]
    if not ours:
        return False
    others = {
        r["variant"]: r["rows_per_s"]
        for r in table
        if r["workload"] == "cpu-heavy" and not r["variant"].startswith("dotevals --workers")
    }
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110)
    ax.plot([w for w, _ in ours], [t for _, t in ours], "o-", label="dotevals --workers N")
    styles = [("--", "grey"), (":", "black"), ("-.", "tab:red"), ("--", "tab:green")]
    for (label, value), (style, colour) in zip(others.items(), styles, strict=False):
        ax.axhline(value, linestyle=style, color=colour, label=label)
    ax.set_xlabel("worker processes")
    ax.set_ylabel("rows per second")
    ax.set_title("cpu-heavy: 1000 rows x 5 ms of CPU work")
    ax.set_xticks([w for w, _ in ours])
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return True


def write_docs(
    info: dict[str, Any],
    table_lines: list[str],
    checks: list[dict[str, Any]],
    has_plot: bool,
    repeat: int,
) -> None:
    budget_lines = ["| budget | measured | target | met |", "|---|---|---|---|"] + [
        f"| {c['budget']} | {c['measured']} | {c['target']} | {'yes' if c['met'] else 'NO'} |"
        for c in checks
    ]
    text = (DOCS / "performance.template.md").read_text()
    text = text.replace(
        "{{machine}}",
        (
            f"{info['cpu']}, {info['physical_cores']} physical / {info['logical_cores']} logical "
            f"cores, {info['memory_gib']} GiB, {info['platform']}, Python {info['python']}, "
            f"measured on {info['date']}"
        ),
    )
    text = text.replace("{{repeat}}", str(repeat))
    text = text.replace("{{table}}", "\n".join(table_lines))
    text = text.replace("{{budget}}", "\n".join(budget_lines))
    text = text.replace(
        "{{plot}}",
        "![cpu-heavy throughput against worker count](img/cpu-heavy-throughput.png)"
        if has_plot
        else "",
    )
    (DOCS / "performance.md").write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", help="comma-separated workload names")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/performance.md")
    parser.add_argument(
        "--docs-only",
        action="store_true",
        help="rewrite docs/performance.md and the plot from bench/results/latest.json",
    )
    args = parser.parse_args(argv)
    if args.docs_only:
        saved = json.loads((RESULTS / "latest.json").read_text())
        has_plot = plot(saved["results"], DOCS / "img" / "cpu-heavy-throughput.png")
        lines = format_table(saved["results"])
        write_docs(saved["machine"], lines, saved["budget"], has_plot, saved["repeat"])
        return 0
    names = set(args.only.split(",")) if args.only else None
    info = machine()
    per_us = calibrate()
    print(
        f"dotevals benchmarks on {info['cpu']} ({info['physical_cores']} physical cores), "
        f"{args.repeat} runs per variant after a warm-up",
        flush=True,
    )
    table = []
    chosen = workloads(per_us, names)
    with dask_cluster(any(DASK in v.options for w in chosen for v in w.variants)) as dask:
        for workload in chosen:
            print(f"{workload.name}: {workload.description}", flush=True)
            table += summarise(workload, measure(workload, args.repeat, dask))
    lines = format_table(table)
    checks = budget(table)
    print("\n".join(lines))
    print()
    for c in checks:
        print(
            f"{'ok ' if c['met'] else 'MISS'} {c['budget']}: {c['measured']} (target {c['target']})"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(
        dumps({"machine": info, "repeat": args.repeat, "results": table, "budget": checks})
    )
    has_plot = plot(table, DOCS / "img" / "cpu-heavy-throughput.png")
    if not args.no_docs and names is None:
        write_docs(info, lines, checks, has_plot, args.repeat)
    print(f"\nwrote {RESULTS / 'latest.json'}" + (" and the plot" if has_plot else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
