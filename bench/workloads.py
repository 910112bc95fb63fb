"""The benchmark workloads, each run several ways on the same work.

Every variant is a command run in a fresh process (so memory is measured per
run): a pytest session on a generated eval file, or a small script for the
comparisons (plain sequential Python, loky called directly, pytest-xdist on
the same work written as parametrized tests).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from dotevals.storage import get_storage

PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
#: Stands for the address of the Dask cluster the harness starts (see ``dask_cluster``).
DASK = "{dask}"

BURN = """
def burn(iterations):
    total = 0
    for i in range(iterations):
        total += i * i
    return total
"""

EVAL_CPU = (
    """
import os
from dotevals import Score, foreach
from dotevals.metrics import accuracy
"""
    + BURN
    + """
ROWS, ITER = int(os.environ["BENCH_ROWS"]), int(os.environ["BENCH_ITER"])
DATA = range(ROWS) if os.environ.get("BENCH_GENERATOR") != "1" else ((i,) for i in range(ROWS))


@foreach("n", DATA)
def eval_cpu(n):
    burn(ITER)
    return Score("ok", n >= 0, [accuracy()])
"""
)

EVAL_IO = """
import asyncio, os
from dotevals import ForEach, Score
from dotevals.concurrency import SlidingWindow
from dotevals.metrics import accuracy

window = int(os.environ["BENCH_WINDOW"])
foreach = ForEach(concurrency=SlidingWindow(window) if window else None)


@foreach("n", range(int(os.environ["BENCH_ROWS"])))
async def eval_io(n):
    await asyncio.sleep(0.05)
    return Score("ok", True, [accuracy()])
"""

EVAL_MANY = (
    """
import os
from dotevals import Score, foreach
from dotevals.metrics import accuracy
"""
    + BURN
    + """
ROWS, ITER = int(os.environ["BENCH_ROWS"]), int(os.environ["BENCH_ITER"])


def _make(k):
    def evaluation(n):
        burn(ITER)
        return Score("ok", True, [accuracy()], {"pid": os.getpid()})
    evaluation.__name__ = f"eval_small_{k:02d}"
    return foreach("n", range(ROWS))(evaluation)


for _k in range(int(os.environ["BENCH_EVALUATIONS"])):
    globals()[f"eval_small_{_k:02d}"] = _make(_k)
"""
)

TEST_XDIST = (
    """
import os
import pytest
"""
    + BURN
    + """
ROWS, ITER = int(os.environ["BENCH_ROWS"]), int(os.environ["BENCH_ITER"])


@pytest.mark.parametrize("n", range(ROWS))
def test_row(n):
    burn(ITER)
"""
)

SEQUENTIAL = (
    BURN
    + """
import os, time
ROWS, ITER = int(os.environ["BENCH_ROWS"]), int(os.environ["BENCH_ITER"])
start = time.perf_counter()
for n in range(ROWS):
    burn(ITER)
print("ELAPSED", time.perf_counter() - start)
"""
)

LOKY = (
    BURN
    + """
import os, time
from loky import ProcessPoolExecutor
ROWS, ITER = int(os.environ["BENCH_ROWS"]), int(os.environ["BENCH_ITER"])
WORKERS = int(os.environ["BENCH_WORKERS"])
if __name__ == "__main__":
    start = time.perf_counter()
    executor = ProcessPoolExecutor(WORKERS)
    chunk = max(1, ROWS // (WORKERS * 16))
    for _ in executor.map(burn, [ITER] * ROWS, chunksize=chunk):
        pass
    executor.shutdown()
    print("ELAPSED", time.perf_counter() - start)
"""
)


@dataclass
class Variant:
    """One way of running a workload."""

    label: str
    kind: str  # "dotevals", "script", "xdist"
    env: dict[str, str]
    workers: int = 1
    options: list[str] = field(default_factory=list)


@dataclass
class Workload:
    name: str
    description: str
    rows: int
    row_seconds: float  # pure work per row
    source: str  # the eval file (dotevals variants)
    variants: list[Variant]


def workloads(per_us: float, names: set[str] | None = None) -> list[Workload]:
    """The five workloads, sized for this machine's speed (``per_us`` burn iterations/µs)."""

    def iterations(seconds: float) -> str:
        return str(max(1, round(seconds * 1e6 * per_us)))

    heavy = {"BENCH_ROWS": "1000", "BENCH_ITER": iterations(0.005)}
    tiny = {"BENCH_ROWS": "20000", "BENCH_ITER": iterations(25e-6)}
    tiny_small = {**tiny, "BENCH_ROWS": "5000"}
    stream = {"BENCH_ITER": "1", "BENCH_GENERATOR": "1"}
    many = {"BENCH_ROWS": "20", "BENCH_ITER": iterations(0.001), "BENCH_EVALUATIONS": "50"}
    all_workloads = [
        Workload(
            "cpu-heavy",
            "1000 rows, ~5 ms of pure-Python CPU work each",
            1000,
            0.005,
            EVAL_CPU,
            [
                Variant("dotevals --workers 1", "dotevals", heavy, 1, ["--workers", "1"]),
                Variant("dotevals --workers 2", "dotevals", heavy, 2, ["--workers", "2"]),
                Variant("dotevals --workers 3", "dotevals", heavy, 3, ["--workers", "3"]),
                Variant("dotevals --workers 4", "dotevals", heavy, 4, ["--workers", "4"]),
                Variant("plain sequential Python", "script:sequential", heavy, 1),
                Variant(
                    "loky direct, 2 workers", "script:loky", {**heavy, "BENCH_WORKERS": "2"}, 2
                ),
                Variant("pytest-xdist -n 2", "xdist", heavy, 2, ["-n", "2"]),
                Variant(
                    "dotevals on Dask LocalCluster, 2 workers",
                    "dotevals",
                    heavy,
                    2,
                    ["--executor", DASK],
                ),
            ],
        ),
        Workload(
            "cpu-tiny",
            "20000 rows, ~25 us of CPU work each, through pytest with storage on",
            20000,
            25e-6,
            EVAL_CPU,
            [
                Variant("dotevals, 5000 rows", "dotevals", tiny_small, 1),
                Variant("dotevals, 20000 rows", "dotevals", tiny, 1),
                Variant(
                    "dotevals --workers 2, 20000 rows", "dotevals", tiny, 2, ["--workers", "2"]
                ),
                Variant("plain sequential Python", "script:sequential", tiny, 1),
            ],
        ),
        Workload(
            "async-io",
            "2000 rows, each awaiting 50 ms (a stand-in for a model API)",
            2000,
            0.05,
            EVAL_IO,
            [
                Variant(
                    "default (Adaptive)", "dotevals", {"BENCH_ROWS": "2000", "BENCH_WINDOW": "0"}
                ),
                Variant(
                    "SlidingWindow(100)", "dotevals", {"BENCH_ROWS": "2000", "BENCH_WINDOW": "100"}
                ),
            ],
        ),
        Workload(
            "streaming",
            "a generator of rows with tiny work, --workers 2, watching main-process memory",
            200000,
            0.0,
            EVAL_CPU,
            [
                Variant(
                    "20000 rows",
                    "dotevals",
                    {**stream, "BENCH_ROWS": "20000"},
                    2,
                    ["--workers", "2"],
                ),
                Variant(
                    "200000 rows",
                    "dotevals",
                    {**stream, "BENCH_ROWS": "200000"},
                    2,
                    ["--workers", "2"],
                ),
            ],
        ),
        Workload(
            "many-evaluations",
            "50 evaluations of 20 rows (~1 ms each) in one pytest session",
            1000,
            0.001,
            EVAL_MANY,
            [
                Variant(
                    "1 evaluation, --workers 2",
                    "dotevals",
                    {**many, "BENCH_EVALUATIONS": "1"},
                    2,
                    ["--workers", "2"],
                ),
                Variant("50 evaluations, --workers 2", "dotevals", many, 2, ["--workers", "2"]),
                Variant("50 evaluations, main process", "dotevals", many, 1),
            ],
        ),
    ]
    return [w for w in all_workloads if names is None or w.name in names]


def command(
    workload: Workload, variant: Variant, directory: Path, dask_address: str | None = None
) -> list[str]:
    """Write the files a variant needs into ``directory``; return its command."""
    if variant.kind == "dotevals":
        (directory / "eval_bench.py").write_text(workload.source)
        storage = f"json://{directory / 'store'}"
        return [
            *PYTEST,
            "eval_bench.py",
            "--no-progress",
            "--storage",
            storage,
            "--experiment",
            "bench",
            *(dask_address if option == DASK else option for option in variant.options),
        ]
    if variant.kind == "xdist":
        (directory / "test_xdist.py").write_text(TEST_XDIST)
        return [*PYTEST, "test_xdist.py", "-p", "no:dotevals", *variant.options]
    script = {"script:sequential": SEQUENTIAL, "script:loky": LOKY}[variant.kind]
    (directory / "bench_script.py").write_text(script)
    return [sys.executable, "bench_script.py"]


def evaluation_seconds(variant: Variant, directory: Path, stdout: str) -> float | None:
    """Time spent running rows: from storage for dotevals, as printed by the scripts."""
    if variant.kind.startswith("script"):
        return float(stdout.split("ELAPSED")[-1].split()[0])
    if variant.kind != "dotevals":
        return None
    storage = get_storage(f"json://{directory / 'store'}")
    infos = [storage.load_evaluation("bench", name) for name in storage.list_evaluations("bench")]
    starts = [i.metadata["last_run_at"] for i in infos if i is not None]
    ends = [i.ended_at for i in infos if i is not None and i.ended_at]
    return max(ends) - min(starts)


def worker_pids(directory: Path) -> int:
    """How many distinct worker processes scored the rows of a many-evaluations run."""
    storage = get_storage(f"json://{directory / 'store'}")
    pids = set()
    for name in storage.list_evaluations("bench"):
        for record in storage.iter_records("bench", name):
            pids.update(score.metadata.get("pid") for score in record.result.scores)
    return len(pids)


def dumps(data: object) -> str:
    return json.dumps(data, indent=2, sort_keys=False)


@contextmanager
def dask_cluster(needed: bool) -> Iterator[str | None]:
    """A LocalCluster of 2 single-threaded worker processes, as ``dask://HOST:PORT``.

    None when no variant needs it or Dask's ``distributed`` is not installed.
    """
    try:
        from distributed import LocalCluster
    except ImportError:
        needed = False
    if not needed:
        yield None
        return
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        yield cluster.scheduler_address.replace("tcp://", "dask://")
