"""Running a workload's variants in alternating rounds.

Round 1 runs A, B, C; round 2 runs C, B, A; and so on. A slow spell of a
shared machine then hits every variant alike, each ratio is taken between
runs of the same round (neighbours in time), and no variant always runs
first. Before its first round, each kind of command runs once on 2 rows as a
warm-up that is left out (bytecode caches, files in the page cache).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.measure import Figures, Run, run_command
from bench.workloads import (
    _SERVER,
    Variant,
    Workload,
    command,
    environment,
    evaluation_seconds,
    needs_dask,
    server_rate,
    worker_pids,
)

_warm: set[tuple[str, bool, bool]] = set()


def run_variant(
    workload: Workload, variant: Variant, dask: str | None, env: dict[str, str] | None = None
) -> Run:
    """One run of ``variant`` in a fresh directory, with the time it spent on rows."""
    with tempfile.TemporaryDirectory(prefix="dotevals-bench-") as tmp:
        directory = Path(tmp)
        argv = command(workload, variant, directory, dask)
        if _SERVER:
            server_rate(_SERVER[0])  # forget what came before
        run = run_command(argv, directory, env or environment(variant, dask))
        if _SERVER:
            run.server_requests, run.server_rpm = server_rate(_SERVER[0])
        run.rows = evaluation_seconds(variant, directory, run.stdout)
        if workload.name == "many-evaluations" and variant.workers > 1:
            run.worker_processes = worker_pids(directory)
    return run


def _warm_up(workload: Workload, variant: Variant, dask: str | None) -> None:
    key = (variant.kind, bool(variant.options), "--executor" in variant.options)
    if key in _warm:
        return
    _warm.add(key)
    env = environment(variant, dask)
    env.update({k: "2" for k in ("BENCH_ROWS", "BENCH_EVALUATIONS") if k in env})
    env["BENCH_LIMIT"] = "2"  # the programs of the real workloads take their first 2 rows
    run_variant(workload, variant, dask, env)


def measure(workload: Workload, repeat: int, dask: str | None) -> dict[str, Figures]:
    """``workload.rounds(repeat)`` runs of every variant, in alternating rounds.

    Variants that need a Dask cluster are dropped when there is none.
    """
    workload.variants = [v for v in workload.variants if dask is not None or not needs_dask(v)]
    figures = {variant.label: Figures() for variant in workload.variants}
    for variant in workload.variants:
        _warm_up(workload, variant, dask)
    for number in range(workload.rounds(repeat)):
        order = workload.variants if number % 2 == 0 else workload.variants[::-1]
        for variant in order:
            figures[variant.label].runs.append(run_variant(workload, variant, dask))
    return figures
