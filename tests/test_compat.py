"""Code written for dotevals 0.23 runs unchanged: its API names, plugins and flags.

Plugins are real installed distributions: a ``*.dist-info`` directory with an
``entry_points.txt`` on the PYTHONPATH of a subprocess pytest session.
"""

from __future__ import annotations

import asyncio
import pickle
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest
import tenacity
from pool_support import FAST, wait_until

import dotevals
from dotevals import ForEach, Result, Runner, Score, foreach
from dotevals.concurrency import Adaptive, SlidingWindow
from dotevals.metrics import accuracy

# Concurrency and retries ------------------------------------------------------


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"json://{tmp_path / 'store'}"


def test_foreach_takes_retries_and_concurrency_positionally(url):
    retries = tenacity.AsyncRetrying(
        retry=tenacity.retry_if_exception_type(ConnectionError),
        stop=tenacity.stop_after_attempt(2),
        wait=tenacity.wait_none(),
        reraise=True,
    )
    window = SlidingWindow(3)
    decorator = ForEach(retries, window)
    assert decorator.concurrency is window
    calls: list[int] = []
    in_flight = peak = 0

    @decorator("x", range(8))
    async def ev(x):
        nonlocal in_flight, peak
        calls.append(x)
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        if x == 0:
            raise ConnectionError("down")
        return Score("ok", True, [accuracy()])

    summary = dotevals.run(ev, storage=url, progress=False)
    assert calls.count(0) == 2  # the policy given first: two attempts
    assert peak == 3  # the strategy given second
    assert {r.item_id: r.error for r in summary.records if r.error} == {0: "ConnectionError: down"}


def test_default_policy_makes_three_attempts_with_growing_waits(url):
    decorator = ForEach()
    waits: list[float] = []
    decorator.retrying.sleep = waits.append  # record the waits instead of sleeping
    calls: list[int] = []

    @decorator("x", [1])
    def ev(x):
        calls.append(x)
        raise ConnectionError("down")

    dotevals.run(ev, storage=url, progress=False)
    assert calls == [1, 1, 1]
    assert len(waits) == 2
    assert 1 <= waits[0] <= 2 <= waits[1] <= 3  # 1 s then 2 s, each with up to 1 s of jitter


def test_adaptive_takes_the_documented_arguments_in_their_order():
    strategy = Adaptive(5, 1, 100, 2.0, 20, 0.98, 0.90, 3, 0.7)
    assert (strategy.initial_concurrency, strategy.min_concurrency) == (5, 1)
    assert strategy.max_concurrency == 100
    assert strategy.adaptation_interval == 2.0
    assert strategy.throughput_window == 20
    assert (strategy.increase_threshold, strategy.decrease_threshold) == (0.98, 0.90)
    assert strategy.stability_window == 3
    assert strategy.error_backoff_factor == 0.7


@pytest.mark.parametrize(
    "kwargs",
    [
        {"throughput_window": 1},
        {"throughput_window": 2.5},
        {"stability_window": 0},
        {"increase_threshold": 0.5, "decrease_threshold": 0.9},
        {"decrease_threshold": 0},
    ],
)
def test_adaptive_rejects_bad_documented_arguments(kwargs):
    with pytest.raises(dotevals.errors.ConfigurationError, match="Adaptive"):
        Adaptive(**kwargs)


class FakeClock:
    """Stands in for ``time`` in dotevals.concurrency: the tests set the time."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr("dotevals.concurrency.time", fake)
    return fake


OK = types.SimpleNamespace(failed=False)
FAILED = types.SimpleNamespace(failed=True)


def finish_rows(strategy: Adaptive, clock: FakeClock, times: list[float], row=OK) -> int:
    """Rows finish at these times; the limit afterwards."""
    for moment in times:
        clock.now = moment
        strategy.observe(row)
    return strategy.limit()


def steady_interval(strategy: Adaptive, clock: FakeClock, rows: int) -> int:
    """``rows`` rows evenly over the next second (a power of two keeps times exact)."""
    start = clock.now
    return finish_rows(strategy, clock, [start + (i + 1) / rows for i in range(rows)])


@pytest.mark.parametrize(("stability_window", "expected"), [(1, [8, 16, 32]), (3, [4, 4, 8])])
def test_adaptive_honours_adaptation_interval_and_stability_window(
    clock, stability_window, expected
):
    strategy = Adaptive(
        initial_concurrency=4, adaptation_interval=1.0, stability_window=stability_window
    )
    # half an interval: no decision yet
    assert finish_rows(strategy, clock, [0.25, 0.5]) == 4
    limits = [finish_rows(strategy, clock, [0.75, 1.0])]
    limits += [steady_interval(strategy, clock, n) for n in (8, 16)]
    # throughput rises every interval: the limit moves at every rise, or at the third in a row
    assert limits == expected


def test_dataset_with_splits_needs_one():
    with pytest.raises(
        dotevals.errors.DatasetError, match="'arithmetic' needs a split: one of 'train', 'test'"
    ):
        foreach.arithmetic()


def test_adaptive_honours_the_throughput_thresholds(clock):
    strategy = Adaptive(
        initial_concurrency=8,
        adaptation_interval=1.0,
        increase_threshold=1.5,
        decrease_threshold=0.5,
    )
    # rises: 8/s (from nothing), 16/s (x2); within the thresholds, steady, which probes
    # upwards: 16/s (x1), 8/s (x0.5, a fall for the default 0.8); a fall: 2/s (x0.25)
    assert [steady_interval(strategy, clock, n) for n in (8, 16, 16, 8, 2)] == [16, 32, 64, 128, 64]


def test_adaptive_honours_error_backoff_factor(clock):
    strategy = Adaptive(initial_concurrency=10, adaptation_interval=1.0, error_backoff_factor=0.7)
    assert finish_rows(strategy, clock, [0.5, 1.0], row=FAILED) == 7


def test_adaptive_lowers_the_limit_once_for_one_fall(clock):
    strategy = Adaptive(initial_concurrency=8, adaptation_interval=1.0)
    # a rise, a fall; at the lower limit fewer rows finish, which is its baseline, not a
    # second fall; then steady, which probes upwards again
    assert [steady_interval(strategy, clock, n) for n in (16, 4, 2, 2)] == [16, 8, 8, 16]


def test_adaptive_probes_upwards_while_throughput_holds(clock):
    strategy = Adaptive(initial_concurrency=4, adaptation_interval=1.0)
    assert [steady_interval(strategy, clock, 8) for _ in range(4)] == [8, 16, 32, 64]


def test_adaptive_does_not_probe_past_a_limit_where_rows_failed(clock):
    strategy = Adaptive(initial_concurrency=16, adaptation_interval=1.0)
    assert finish_rows(strategy, clock, [0.5, 1.0], row=FAILED) == 8
    assert [steady_interval(strategy, clock, 8) for _ in range(4)] == [8, 16, 16, 16]


@pytest.mark.parametrize(("window", "expected"), [(None, 8), (3, 32)])
def test_adaptive_honours_throughput_window(clock, window, expected):
    strategy = Adaptive(initial_concurrency=8, adaptation_interval=1.0, throughput_window=window)
    assert steady_interval(strategy, clock, 4) == 16
    # 3 rows in the next second, but the last 3 within 0.1 s: over the interval
    # throughput fell (3/s < 4/s), over the last 3 rows it rose (20/s)
    assert finish_rows(strategy, clock, [1.9, 1.95, 2.0]) == expected


# Imports -----------------------------------------------------------------------


def test_names_imported_from_the_package_and_dotevals_core():
    from dotevals import ModelHandle, ModelProvider, providers
    from dotevals.core import EvaluationSummary
    from dotevals.core import ForEach as CoreForEach
    from dotevals.core import Result as CoreResult
    from dotevals.core import foreach as core_foreach

    assert (ModelHandle, ModelProvider) == (providers.ModelHandle, providers.ModelProvider)
    assert (CoreForEach, core_foreach, CoreResult) == (ForEach, foreach, Result)
    assert EvaluationSummary is dotevals.EvaluationSummary


def test_storage_register_and_list_backends(tmp_path: Path):
    from dotevals.storage import get_storage, list_backends, register, registry
    from dotevals.storage.json import JSONStorage

    with registry._backends.isolated():
        assert list_backends()[:2] == ["json", "sqlite"]
        register("compatjson", JSONStorage)
        assert "compatjson" in list_backends()
        assert type(get_storage(f"compatjson://{tmp_path}")) is JSONStorage


def test_dataset_listing_info_and_registry():
    from dotevals.datasets import Dataset, DatasetRegistry, get_dataset_info, list_available
    from dotevals.datasets.arithmetic import Arithmetic

    assert "arithmetic" in list_available()
    assert get_dataset_info("arithmetic") == {
        "name": "arithmetic",
        "splits": ["train", "test"],
        "columns": ["question", "answer"],
        "num_rows": 40,
    }

    class Pairs(Dataset):
        name = "compat_pairs"
        columns = ["a", "b"]
        splits: list[str] = []

        def __iter__(self):
            yield (1, 2)

    own = DatasetRegistry()
    assert own.register(Pairs) is Pairs
    assert own.get_dataset_class("compat_pairs") is Pairs
    assert own.get_dataset_class("arithmetic") is Arithmetic
    assert {"arithmetic", "compat_pairs"} <= set(own.list_datasets())
    assert "compat_pairs" not in list_available()  # a registry of its own


def test_runner_results_is_the_results_dict(url):
    @foreach("x", [1, 2])
    def ev(x):
        return Score("ok", x == 1, [accuracy()])

    results: dict = {}
    runner = Runner(results_dict=results, storage=url, progress=False)
    assert runner.results is results
    asyncio.run(runner.run_evaluations([ev]))
    assert runner.results is results
    with pytest.warns(DeprecationWarning, match=r"summary is now EvaluationSummary\.metrics"):
        assert results["ev"].summary == {"ok": {"accuracy": 0.5}}


# Plugins -----------------------------------------------------------------------

PLUGIN_MODULE = '''
    import pickle
    import time
    from pathlib import Path

    from dotevals.datasets import Dataset
    from dotevals.models import Evaluation, EvaluationStatus, Record
    from dotevals.storage import Storage


    class Capitals(Dataset):
        """A dataset without splits, as a plugin for dotevals 0.23 writes one."""

        name = "capitals"
        splits = []
        columns = ["country", "capital"]

        def __init__(self, split=None, **kwargs):
            self.data = [("France", "Paris"), ("Japan", "Tokyo"), ("Peru", "Lima")]
            self.num_rows = len(self.data)

        def __iter__(self):
            yield from self.data


    class PickleStorage(Storage):
        """A backend of the documented Storage interface: one pickle file."""

        def __init__(self, path):
            self.path = Path(path)

        def _load(self):
            return pickle.loads(self.path.read_bytes()) if self.path.exists() else {}

        def _save(self, data):
            self.path.write_bytes(pickle.dumps(data))

        def create_experiment(self, experiment_name):
            data = self._load()
            data.setdefault(experiment_name, {})
            self._save(data)

        def delete_experiment(self, experiment_name):
            data = self._load()
            del data[experiment_name]
            self._save(data)

        def rename_experiment(self, old_name, new_name):
            data = self._load()
            data[new_name] = data.pop(old_name)
            self._save(data)

        def list_experiments(self):
            return list(self._load())

        def create_evaluation(self, experiment_name, evaluation):
            data = self._load()
            evaluations = data.setdefault(experiment_name, {})
            if evaluation.evaluation_name not in evaluations:
                evaluations[evaluation.evaluation_name] = {"evaluation": evaluation, "results": []}
            self._save(data)

        def load_evaluation(self, experiment_name, evaluation_name):
            entry = self._load().get(experiment_name, {}).get(evaluation_name)
            return entry["evaluation"] if entry else None

        def update_evaluation_status(self, experiment_name, evaluation_name, status):
            data = self._load()
            evaluation = data[experiment_name][evaluation_name]["evaluation"]
            evaluation.status = status
            if status == EvaluationStatus.COMPLETED:
                evaluation.completed_at = time.time()
            self._save(data)

        def completed_items(self, experiment_name, evaluation_name):
            return [r.item_id for r in self.get_results(experiment_name, evaluation_name)
                    if r.error is None]

        def list_evaluations(self, experiment_name):
            return list(self._load().get(experiment_name, {}))

        def add_results(self, experiment_name, evaluation_name, results):
            data = self._load()
            data[experiment_name][evaluation_name]["results"].extend(results)
            self._save(data)

        def get_results(self, experiment_name, evaluation_name):
            entry = self._load().get(experiment_name, {}).get(evaluation_name)
            return list(entry["results"]) if entry else []

        def remove_error_result(self, experiment_name, evaluation_name, item_id):
            data = self._load()
            entry = data[experiment_name][evaluation_name]
            entry["results"] = [r for r in entry["results"]
                                if r.item_id != item_id or r.error is None]
            self._save(data)
'''

PROVIDER_PLUGIN = """
    import pytest

    from dotevals.providers import ModelHandle, ModelProvider


    class EchoProvider(ModelProvider):
        async def setup(self, resource_spec, **config):
            return ModelHandle(resource_spec, resource_spec.upper(), self)

        async def teardown(self, resource_id):
            pass


    @pytest.fixture(scope="session")
    def echo_provider():
        yield EchoProvider()
"""

ENTRY_POINTS = """\
[dotevals.datasets]
capitals = compatplug:Capitals

[dotevals.model_providers]
echo = compatplug_fixtures:echo_provider

[dotevals.storage]
pickled = compatplug:PickleStorage

[pytest11]
compatplug = compatplug_fixtures
"""


@pytest.fixture
def plugged(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """An installed distribution declaring a dataset, a provider fixture and a storage."""
    site = pytester.path / "site"
    dist_info = site / "compatplug-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: compatplug\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(ENTRY_POINTS)
    (site / "compatplug.py").write_text(textwrap.dedent(PLUGIN_MODULE))
    (site / "compatplug_fixtures.py").write_text(textwrap.dedent(PROVIDER_PLUGIN))
    monkeypatch.setenv("PYTHONPATH", str(site))
    return pytester


def run_pytest(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(*FAST, *args, timeout=120)


def test_dataset_plugin_without_splits(plugged: pytest.Pytester):
    plugged.makepyfile(
        eval_capitals="""
        from dotevals import Result, foreach
        from dotevals.datasets import get_dataset_info
        from dotevals.models import Score
        from dotevals.metrics import accuracy

        assert get_dataset_info("capitals")["splits"] == []


        @foreach.capitals()
        def eval_capitals(country, capital):
            return Result(Score("short", len(capital) <= 5, [accuracy()]))
        """
    )
    result = run_pytest(
        plugged, "eval_capitals.py", "--storage", "json://store", "--experiment", "e"
    )
    result.assert_outcomes(passed=1)
    from dotevals.storage import get_storage

    records = get_storage(f"json://{plugged.path / 'store'}").load_records(
        "e", "eval_capitals.py::eval_capitals"
    )
    assert [r.dataset_row for r in records] == [
        {"country": "France", "capital": "Paris"},
        {"country": "Japan", "capital": "Tokyo"},
        {"country": "Peru", "capital": "Lima"},
    ]


def test_model_provider_entry_point_naming_a_fixture(plugged: pytest.Pytester):
    plugged.makepyfile(
        test_providers="""
        import asyncio

        from compatplug_fixtures import EchoProvider


        def test_model_providers(model_providers, echo_provider):
            assert type(model_providers["echo"]) is EchoProvider
            assert model_providers["echo"] is echo_provider
            handle = asyncio.run(model_providers["echo"].setup("tiny"))
            assert handle.model == "TINY"
        """
    )
    result = run_pytest(plugged, "-W", "error::UserWarning")
    result.assert_outcomes(passed=1)


def test_storage_backend_of_the_documented_interface(plugged: pytest.Pytester):
    plugged.makepyfile(
        eval_stored="""
        from pathlib import Path

        from dotevals import foreach
        from dotevals.models import Score
        from dotevals.metrics import accuracy

        CALLS = Path(__file__).with_name("calls.txt")


        @foreach("x", range(4))
        def eval_stored(x):
            with CALLS.open("a") as f:
                f.write(f"{x}\\n")
            return Score("even", x % 2 == 0, [accuracy()])
        """
    )
    db = plugged.path / "results.pkl"
    args = ("eval_stored.py", "--storage", f"pickled://{db}", "--experiment", "e1")
    run_pytest(plugged, *args, "--samples", "2").assert_outcomes(passed=1)
    result = run_pytest(plugged, *args)  # resumes: only the two rows left run
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*eval_stored*0.5*"])
    assert (plugged.path / "calls.txt").read_text().split() == ["0", "1", "2", "3"]

    data = pickle.loads(db.read_bytes())
    entry = data["e1"]["eval_stored.py::eval_stored"]
    assert entry["evaluation"].status.value == "completed"
    assert sorted(r.item_id for r in entry["results"]) == [0, 1, 2, 3]

    listing = plugged.run(
        sys.executable,
        "-c",
        "import sys; from dotevals.cli import main; sys.exit(main())",
        "list",
        "--storage",
        f"pickled://{db}",
        timeout=60,
    )
    assert listing.ret == 0
    listing.stdout.fnmatch_lines(["*e1*"])


HOLD_LOCK = """
import sys
import time
from pathlib import Path

from dotevals.storage.writer import ExperimentStore

store = ExperimentStore(sys.argv[1], "e1")
store.lock()
Path("locked").write_text("yes")
deadline = time.monotonic() + 60
while not Path("release").exists() and time.monotonic() < deadline:
    time.sleep(0.05)
store.unlock()
"""


def test_storage_backend_of_the_documented_interface_gets_a_run_lock(plugged: pytest.Pytester):
    plugged.makepyfile(
        eval_one="""
        from dotevals import foreach
        from dotevals.models import Score


        @foreach("x", [1])
        def eval_one(x):
            return Score("ok", True)
        """
    )
    url = f"pickled://{plugged.path / 'results.pkl'}"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, url],
        cwd=plugged.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until((plugged.path / "locked").exists, 60, "the lock", holder)
        second = run_pytest(plugged, "eval_one.py", "--storage", url, "--experiment", "e1")
        assert second.ret == pytest.ExitCode.USAGE_ERROR
        second.stderr.fnmatch_lines(
            [f"*experiment 'e1' in {url} is in use by process {holder.pid}*"]
        )
    finally:
        (plugged.path / "release").write_text("yes")
        holder.wait(timeout=60)
    assert holder.returncode == 0
    run_pytest(plugged, "eval_one.py", "--storage", url, "--experiment", "e1").assert_outcomes(
        passed=1
    )


def test_incomplete_backend_is_refused_with_the_missing_methods():
    from dotevals.storage import register

    class Half:
        def add_results(self, experiment_name, evaluation_name, results): ...

        def get_results(self, experiment_name, evaluation_name): ...

    with pytest.raises(TypeError, match=r"Half does not implement create_experiment, .*list_"):
        register("half", Half)


# pytest -------------------------------------------------------------------------


def test_dash_c_is_concurrent(pytester: pytest.Pytester):
    pytester.makepyfile(
        eval_pair="""
        import asyncio

        from dotevals import foreach
        from dotevals.models import Score

        OTHER_RAN = asyncio.Event()


        @foreach("x", [1])
        async def eval_waits(x):
            # finishes only if eval_sets runs at the same time
            await asyncio.wait_for(OTHER_RAN.wait(), 20)
            return Score("ok", True)


        @foreach("x", [1])
        async def eval_sets(x):
            OTHER_RAN.set()
            return Score("ok", True)
        """
    )
    result = run_pytest(pytester, "-C", "--storage", "json://store")
    result.assert_outcomes(passed=2)
