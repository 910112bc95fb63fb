"""``python -m bench``: run the workloads, print the table and the budget, write JSON, a plot
and the docs page.

Options: ``--repeat N`` (rounds per workload, default 3; cheap workloads run three
times as many, streaming a third), ``--only plugin-load,cpu-heavy``, ``--profile``
(a cProfile top-20 of the main process on cpu-tiny), ``--no-docs``, ``--docs-only``
(rewrite the docs page from the last full run's saved results).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from bench.budget import checks
from bench.measure import REPO, runs_as_json, runs_from_json
from bench.profile import profile
from bench.report import format_table, machine, plot, print_budget, summarise, write_docs
from bench.rounds import measure
from bench.work import calibrate
from bench.workloads import chat_server, dask_cluster, dumps, needs_dask, workloads

RESULTS = REPO / "bench" / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", help="comma-separated workload names")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of cpu-tiny")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/performance.md")
    parser.add_argument(
        "--docs-only",
        action="store_true",
        help="compute the budget again from the runs saved in bench/results/latest.json and "
        "rewrite docs/performance.md and the plot",
    )
    args = parser.parse_args(argv)
    if args.docs_only:
        saved = json.loads((RESULTS / "latest.json").read_text())
        saved["budget"] = [check.as_dict() for check in checks(runs_from_json(saved["runs"]))]
        print_budget(saved["budget"])
        write_docs(saved["machine"], saved, plot(saved["results"]))
        return 0
    names = set(args.only.split(",")) if args.only else None
    info = machine()
    chosen = workloads(calibrate(), names)
    if names and len(chosen) != len(names):
        known = ", ".join(w.name for w in workloads(1.0))
        parser.error(f"--only: unknown workload in {args.only!r} (known: {known})")
    print(
        f"dotevals benchmarks on {info['cpu']} ({info['physical_cores']} physical cores, "
        f"load average {info['load_average'][0]}), --repeat {args.repeat}",
        flush=True,
    )
    started = time.perf_counter()
    results, table = {}, []
    for workload in chosen:
        if missing := workload.missing():
            print(
                f"{workload.name}: left out, {', '.join(missing)} not installed "
                "(make bench installs the bench extra)",
                flush=True,
            )
            continue
        print(f"{workload.name}: {workload.description}", flush=True)
        with (
            dask_cluster(any(needs_dask(v) for v in workload.variants)) as dask,
            chat_server(workload.name == "llm"),
        ):
            results[workload.name] = measure(workload, args.repeat, dask)
        rows = summarise(workload, results[workload.name])
        print("\n".join(format_table(rows)[2:]), flush=True)
        table += rows
    info["load_average_end"] = machine()["load_average"]
    budget = [check.as_dict() for check in checks(results)]
    print()
    print("\n".join(format_table(table)))
    print()
    print_budget(budget)
    saved = {
        "machine": info,
        "repeat": args.repeat,
        "results": table,
        "budget": budget,
        "runs": runs_as_json(results),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    # A narrowed run (--only) keeps the last full run's file, which --docs-only reads.
    path = RESULTS / ("latest.json" if names is None else "partial.json")
    path.write_text(dumps(saved))
    # ... and its plot goes next to it, not over the docs page's
    has_plot = plot(table) if names is None else plot(table, RESULTS / "partial.png")
    if not args.no_docs and names is None:
        write_docs(info, saved, has_plot)
    print(
        f"\n{time.perf_counter() - started:.0f} s; wrote {path}"
        + (" and the plot" if has_plot else "")
    )
    if args.profile:
        tiny = workloads(calibrate(), {"cpu-tiny"})[0]
        print()
        print(profile(tiny, "dotevals, 20000 rows", RESULTS / "cpu-tiny.prof"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
