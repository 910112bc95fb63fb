"""The files the benchmark writes and runs: eval files, test files and plain scripts.

Every program does the same pure-Python work (``burn``) so that dotevals, plain
Python, loky, pytest-xdist and Dask are compared on identical rows. Sizes come
from the environment (``BENCH_ROWS``, ``BENCH_ITER``, ...) set by each variant.
Scripts that time their own loop print ``ELAPSED <seconds>``.
"""

from __future__ import annotations

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
#: Each row reports the tokens of a (priced) model call, as a provider would.
USAGE = os.environ.get("BENCH_USAGE") == "1"
if USAGE:
    from dotevals.llm import Usage, add_usage, set_price

    set_price("bench-model", input=0.15, output=0.6)
    TOKENS = Usage(input_tokens=120, output_tokens=30)


@foreach("n", DATA)
def eval_cpu(n):
    burn(ITER)
    if USAGE:
        add_usage("bench-model", TOKENS)
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

#: One ordinary test: what every pytest run in an environment with dotevals pays for.
TEST_ONE = """
def test_one():
    assert 1 + 1 == 2
"""

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

#: loky imported, its executor started, the rows mapped in chunks, the executor shut down.
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

#: Dask's own way to run the rows on the cluster dotevals is pointed at.
DASK_MAP = (
    BURN
    + """
import os, time
from distributed import Client
ROWS, ITER = int(os.environ["BENCH_ROWS"]), int(os.environ["BENCH_ITER"])
if __name__ == "__main__":
    start = time.perf_counter()
    with Client(os.environ["BENCH_DASK"].replace("dask://", "tcp://")) as client:
        client.gather(client.map(burn, [ITER] * ROWS, pure=False))
    print("ELAPSED", time.perf_counter() - start)
"""
)

SCRIPTS = {"script:sequential": SEQUENTIAL, "script:loky": LOKY, "script:dask": DASK_MAP}
