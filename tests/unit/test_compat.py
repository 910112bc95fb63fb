"""Code written for dotevals 0.23 runs unchanged: its API names and arguments, called in
this process (its plugins and flags in real pytest sessions: e2e/test_compat.py)."""

from __future__ import annotations

import asyncio
import types
from pathlib import Path

import pytest
import tenacity

import dotevals
from dotevals import ForEach, Result, Runner, Score, foreach
from dotevals.concurrency import Adaptive, Batch, SlidingWindow
from dotevals.core import run_evaluation
from dotevals.evaluators import exact_match
from dotevals.foreach import get_evaluation
from dotevals.metrics import accuracy
from dotevals.models import EvaluationStatus, EvaluationSummary, Record
from dotevals.sessions import SessionManager
from dotevals.storage import get_storage

# Concurrency and retries ------------------------------------------------------


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


def test_incomplete_backend_is_refused_with_the_missing_methods():
    from dotevals.storage import register

    class Half:
        def add_results(self, experiment_name, evaluation_name, results): ...

        def get_results(self, experiment_name, evaluation_name): ...

    with pytest.raises(TypeError, match=r"Half does not implement create_experiment, .*list_"):
        register("half", Half)


# Models ------------------------------------------------------------------------
def test_record_takes_its_result_and_item_id_alone():
    first, second = Record(Result(), 1), Record(Result(), 2, error="ValueError: x")
    assert (first.item_id, first.dataset_row, first.error) == (1, {}, None)
    assert second.dataset_row == {} and second.dataset_row is not first.dataset_row


def test_compute_summary_gives_the_metrics():
    summary = EvaluationSummary(
        [
            Record(Result(Score("ok", True, [accuracy()])), 0),
            Record(Result(Score("ok", False, [accuracy()])), 1),
            Record(Result(), 2, error="ConnectionError: down"),
            Record(Result(Score("ok", True, [accuracy()])), 3),
        ]
    )
    with pytest.warns(DeprecationWarning, match=r"compute_summary\(\) is now .*\.metrics"):
        assert summary.compute_summary() == {"ok": {"accuracy": 0.5}} == summary.metrics


# Arguments read back -------------------------------------------------------------
def test_foreach_reads_its_retries_and_concurrency_back():
    retries = tenacity.Retrying(stop=tenacity.stop_after_attempt(10))
    batch = Batch(batch_size=5)
    each = ForEach(retries=retries, concurrency=batch)
    assert each.retries is retries and each.concurrency is batch
    assert ForEach(3).retries == 3 and ForEach().retries is None

    @each("x", [1, 2])
    def ev(x):
        return Score("ok", x == 1, [accuracy()])

    assert get_evaluation(ev).retrying is each.retrying


def test_runner_reads_its_arguments_back(url):
    runner = Runner("exp1", 10, False, storage=url)
    assert (runner.experiment_name, runner.samples, runner.concurrent) == ("exp1", 10, False)
    default = Runner(storage=url, progress=False)
    assert (default.experiment_name, default.samples, default.concurrent) == (None, None, True)
    assert default.progress_manager is default.reporter


def test_an_ephemeral_experiment_is_named_once_the_run_starts(url):
    @foreach("x", [1])
    def ev(x):
        return Score("ok", True, [accuracy()])

    runner = Runner(storage=url, progress=False)
    assert runner.experiment_name is None
    runner.run([ev])
    (stored,) = get_storage(url).experiments()
    assert stored.ephemeral and runner.experiment_name == stored.name


# SessionManager and run_evaluation -------------------------------------------------
def test_session_manager_writes_an_evaluation_that_resumes(url):
    manager = SessionManager("eval_math", experiment_name="baseline", storage=url)
    manager.start_evaluation()
    manager.add_results(
        [Record(Result(exact_match("4", "4")), 0), Record(Result(), 1, error="KeyError: x")]
    )
    manager.finish_evaluation()

    storage = get_storage(url)
    assert storage.list_evaluations("baseline") == ["eval_math"]
    assert storage.evaluation_info("baseline", "eval_math").status == "completed"
    assert [r.item_id for r in manager.get_results()] == [0, 1]

    again = SessionManager("eval_math", "baseline", storage)
    again.start_evaluation()
    assert storage.evaluation_info("baseline", "eval_math").status == "running"
    again.add_results([Record(Result(exact_match("5", "5")), 1)])
    again.finish_evaluation(success=False)
    assert storage.load_evaluation("baseline", "eval_math").status is EvaluationStatus.FAILED
    assert [r.error for r in again.get_results()] == [None, None]


def test_session_manager_without_an_experiment_makes_an_ephemeral_one(url):
    manager = SessionManager("ev", storage=url)
    (experiment,) = get_storage(url).experiments()
    assert experiment.ephemeral and experiment.name == manager.current_experiment


def test_run_evaluation_stores_in_the_session_managers_evaluation(url):
    def answer(question, expected, model):
        if question == "boom":
            raise ConnectionError("down")
        return Result(exact_match(model(question), expected))

    manager = SessionManager("gsm8k", experiment_name="e", storage=url)
    rows = [("1+1", "2"), ("boom", "0"), ("2+2", "5")]
    summary = asyncio.run(
        run_evaluation(answer, "question,expected", rows, manager, retries=0, model=calc)
    )
    assert summary.metrics == {"exact_match": {"accuracy": pytest.approx(1 / 3)}}
    assert get_storage(url).list_evaluations("e") == ["gsm8k"]
    assert [r.failed for r in manager.get_results()] == [False, True, False]


def test_run_evaluation_without_a_session_manager_makes_an_ephemeral_experiment(
    tmp_path, monkeypatch
):
    async def answer(question, expected):
        return exact_match(calc(question), expected)

    monkeypatch.chdir(tmp_path)
    rows = [("1+1", "2"), ("2+2", "4"), ("3+3", "6")]
    summary = asyncio.run(run_evaluation(answer, "question,expected", rows, samples=2))
    assert summary.rows == 2 and summary.metrics == {"exact_match": {"accuracy": 1.0}}
    (experiment,) = get_storage(".dotevals").experiments()
    assert experiment.ephemeral
    assert get_storage(".dotevals").list_evaluations(experiment.name) == ["answer"]


def calc(question: str) -> str:
    left, right = question.split("+")
    return str(int(left) + int(right))
