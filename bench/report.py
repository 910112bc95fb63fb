"""What a benchmark run prints and writes: machine, table, budget, plot and docs page."""

from __future__ import annotations

import datetime
import platform
from pathlib import Path
from typing import Any

import psutil

from bench.budget import describe, status
from bench.measure import REPO, Figures
from bench.workloads import Workload

DOCS = REPO / "docs"
PLOT = DOCS / "img" / "cpu-heavy-throughput.png"


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
        "load_average": [round(x, 1) for x in psutil.getloadavg()],
    }


def summarise(workload: Workload, figures: dict[str, Figures]) -> list[dict[str, Any]]:
    """One row of the table per variant."""
    rows = []
    for variant in workload.variants:
        f = figures[variant.label]
        wall, rows_s = f.stat("wall"), f.stat("rows")
        processes = {run.worker_processes for run in f.runs} - {None}
        rows.append(
            {
                "workload": workload.name,
                "variant": variant.label,
                "kind": variant.kind,
                "workers": variant.workers,
                "rows": variant.rows,
                "wall_s": wall,
                "rows_s": rows_s,
                "rows_per_s": variant.rows / (rows_s or wall)["median"] if variant.rows else None,
                "main_peak_mb": f.stat("main_peak_mb"),
                "workers_peak_mb": f.stat("workers_peak_mb"),
                "worker_processes": max(processes) if processes else None,
            }
        )
    return rows


def _table(headers: list[str], lines: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in lines)) for i, h in enumerate(headers)]
    out = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    return out + [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in lines
    ]


def format_table(table: list[dict[str, Any]]) -> list[str]:
    headers = [
        "workload",
        "variant",
        "wall s (min-max)",
        "rows s",
        "rows/s",
        "main MB",
        "workers MB",
    ]
    lines = []
    for row in table:
        wall = row["wall_s"]
        processes = row["worker_processes"]
        lines.append(
            [
                row["workload"],
                row["variant"] + (f" ({processes} worker processes in all)" if processes else ""),
                f"{wall['median']:.2f} ({wall['min']:.2f}-{wall['max']:.2f})",
                f"{row['rows_s']['median']:.2f}" if row["rows_s"] else "-",
                f"{row['rows_per_s']:.0f}" if row["rows_per_s"] else "-",
                f"{row['main_peak_mb']['median']:.0f}",
                f"{row['workers_peak_mb']['median']:.0f}",
            ]
        )
    return _table(headers, lines)


def format_budget(checks: list[dict[str, Any]]) -> list[str]:
    """The budget as a Markdown table, then the notes of its figures."""
    lines = []
    for check in checks:
        measured, spread = describe(check)
        lines.append(
            [check["target"], check["figure"], measured, spread, check["budget"], status(check)]
        )
    table = _table(["target", "figure", "measured (median)", "range", "budget", "met"], lines)
    notes = [f"- {c['target']}, {c['figure']}: {c['note']}." for c in checks if c["note"]]
    return table + ([""] + notes if notes else [])


def print_budget(checks: list[dict[str, Any]]) -> None:
    for check in checks:
        measured, spread = describe(check)
        print(
            f"{status(check):4} {check['target']}: {check['figure']}: {measured} "
            f"[{spread}], budget {check['budget']}"
        )
        if check["note"]:
            print(f"     {check['note']}")


def plot(table: list[dict[str, Any]], path: Path = PLOT) -> bool:
    """cpu-heavy rows per second (end to end) against workers, PNG. False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    heavy = [r for r in table if r["workload"] == "cpu-heavy"]
    if not heavy:
        return False
    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=110)
    series = [
        ("dotevals --workers N", "dotevals", "o-", "tab:blue"),
        ("loky called directly", "script:loky", "s--", "grey"),
        ("pytest-xdist -n N", "xdist", "^:", "tab:green"),
    ]
    for label, kind, style, colour in series:
        points = sorted(
            (r["workers"], r["rows"] / r["wall_s"]["median"])
            for r in heavy
            if r["kind"] == kind and r["workers"] > 0
        )
        if points:
            ax.plot(*zip(*points, strict=True), style, color=colour, label=label)
    for r in heavy:
        if r["kind"] == "script:sequential":
            ax.axhline(
                r["rows"] / r["wall_s"]["median"],
                linestyle="-.",
                color="black",
                label="plain sequential Python",
            )
    counts = sorted({r["workers"] for r in heavy if r["workers"] > 0})
    rows = max(r["rows"] for r in heavy)
    ax.set_xscale("log", base=2)
    ax.set_xticks(counts, [str(n) for n in counts])
    ax.set_xlabel("worker processes")
    ax.set_ylabel("rows per second, end to end")
    ax.set_title(f"cpu-heavy: {rows} rows x 5 ms of CPU work")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return True


def write_docs(info: dict[str, Any], saved: dict[str, Any], has_plot: bool) -> None:
    """docs/performance.md from its template and one run's saved results."""
    load = info.get("load_average")
    text = (DOCS / "performance.template.md").read_text()
    replacements = {
        "{{machine}}": (
            f"{info['cpu']}, {info['physical_cores']} physical / {info['logical_cores']} "
            f"logical cores, {info['memory_gib']} GiB, {info['platform']}, Python "
            f"{info['python']}; measured on {info['date']}"
            + (f", load average {load[0]} at the start" if load else "")
            + (
                f" and {info['load_average_end'][0]} at the end"
                if "load_average_end" in info
                else ""
            )
        ),
        "{{repeat}}": str(saved["repeat"]),
        "{{table}}": "\n".join(format_table(saved["results"])),
        "{{budget}}": "\n".join(format_budget(saved["budget"])),
        "{{plot}}": "![cpu-heavy throughput against worker count](img/cpu-heavy-throughput.png)"
        if has_plot
        else "",
    }
    for key, value in replacements.items():
        text = text.replace(key, value)
    (DOCS / "performance.md").write_text(text)
