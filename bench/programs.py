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

#: 2000 rows each asking the local chat server once, through the llm fixture (the server's
#: address, the model and its limits are pytest options of the variant).
EVAL_LLM = """
import os
from dotevals import ForEach, Score
from dotevals.concurrency import SlidingWindow
from dotevals.metrics import accuracy

window = int(os.environ.get("BENCH_WINDOW", "0"))
foreach = ForEach(concurrency=SlidingWindow(window) if window else None)


@foreach("n", range(int(os.environ["BENCH_ROWS"])))
async def eval_llm(n, llm):
    answer = await llm(f"question {n}")
    return Score("ok", bool(answer), [accuracy()])
"""

#: The same requests through inspect_ai's OpenAI provider (chat completions, as dotevals'),
#: with as many connections as dotevals' model concurrency.
INSPECT_LLM = """
import asyncio, os, time
from inspect_ai.model import GenerateConfig, get_model

ROWS, CONNECTIONS = int(os.environ["BENCH_ROWS"]), int(os.environ["BENCH_CONNECTIONS"])


async def main():
    model = get_model(
        "openai/bench",
        base_url=os.environ["BENCH_LLM_URL"],
        api_key="EMPTY",
        config=GenerateConfig(max_connections=CONNECTIONS, max_retries=5),
        responses_api=False,
    )
    start = time.perf_counter()
    outputs = await asyncio.gather(*(model.generate(f"question {n}") for n in range(ROWS)))
    assert all(output.completion for output in outputs)
    print("ELAPSED", time.perf_counter() - start)


if __name__ == "__main__":
    asyncio.run(main())
"""

#: The same requests from the openai SDK's own AsyncOpenAI, as many at once as the others.
OPENAI_LLM = """
import asyncio, os, time
from openai import AsyncOpenAI

ROWS, CONNECTIONS = int(os.environ["BENCH_ROWS"]), int(os.environ["BENCH_CONNECTIONS"])


async def main():
    client = AsyncOpenAI(base_url=os.environ["BENCH_LLM_URL"], api_key="EMPTY", max_retries=5)
    gate = asyncio.Semaphore(CONNECTIONS)

    async def ask(n):
        async with gate:
            response = await client.chat.completions.create(
                model="bench", messages=[{"role": "user", "content": f"question {n}"}]
            )
        return response.choices[0].message.content

    start = time.perf_counter()
    answers = await asyncio.gather(*(ask(n) for n in range(ROWS)))
    assert all(answers)
    print("ELAPSED", time.perf_counter() - start)


if __name__ == "__main__":
    asyncio.run(main())
"""

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

SCRIPTS = {
    "script:sequential": SEQUENTIAL,
    "script:loky": LOKY,
    "script:dask": DASK_MAP,
    "script:inspect-llm": INSPECT_LLM,
    "script:openai-llm": OPENAI_LLM,
}
