"""``@foreach`` evaluations run outside pytest: rows, errors, scores, retries, resume.

Evaluations are defined inside the tests (never at module level, where the
dotevals plugin of this very session would collect ``eval_*`` functions).
"""

from __future__ import annotations

import asyncio
import functools
import gc
import inspect
import itertools
import weakref
from typing import Any

import pytest
import tenacity

import dotevals
from dotevals import EvaluationSummary, ForEach, Result, Runner, Score, foreach
from dotevals._declare.evaluation import parse_columns
from dotevals.errors import ConfigurationError, DatasetError, DotevalsError
from dotevals.foreach import get_evaluation
from dotevals.metrics import Metric, accuracy, mean, metric
from dotevals.storage import get_storage

FAST_KEYERROR_RETRY = dict(
    stop=tenacity.stop_after_attempt(2),
    retry=tenacity.retry_if_exception_type(KeyError),
    wait=tenacity.wait_none(),
    reraise=True,
)


def run(fn, url: str, **kwargs):
    kwargs.setdefault("progress", False)
    return dotevals.run(fn, storage=url, **kwargs)


def errors_of(summary: EvaluationSummary) -> dict[int, str | None]:
    return {r.item_id: r.error for r in summary.records}


def em(value) -> Score:
    return Score("em", value, [accuracy()])


# Column spec -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("question,answer", ("question", "answer")),
        (" question , answer ", ("question", "answer")),
        ("x", ("x",)),
        ("a,b,c_1", ("a", "b", "c_1")),
    ],
)
def test_parse_columns(spec, expected):
    assert parse_columns(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "not a comma-separated list"),
        ("a,,b", "not a comma-separated list"),
        ("a b", "bad: 'a b'"),
        ("1a,b", "bad: '1a'"),
        ("a,b,", "not a comma-separated list"),
        ("a,a", "repeats a column"),
        (["a", "b"], "one string like 'question,answer', got list"),
        (None, "got NoneType"),
    ],
)
def test_bad_column_spec_is_a_configuration_error(spec, message):
    with pytest.raises(ConfigurationError, match="column") as info:
        foreach(spec, [(1, 2)])
    assert message in str(info.value)


def test_column_that_is_not_a_parameter_fails_at_decoration():
    with pytest.raises(ConfigurationError) as info:

        @foreach("question,answer", [("q", "a")])
        def ev(question, model):
            return em(True)

    assert "ev: column 'answer' is not a parameter" in str(info.value)


def test_columns_may_be_taken_by_var_keyword():
    @foreach("question,answer", [("q", "a")])
    def ev(model, **row):
        return em(row == {"question": "q", "answer": "a"} and model == "m")

    assert get_evaluation(ev).fixture_names == ("model",)
    assert inspect.signature(ev).parameters.keys() == {"model"}


@pytest.mark.parametrize("dataset", [5, "abc", b"xy", None])
def test_dataset_must_be_an_iterable_of_rows(dataset):
    with pytest.raises(ConfigurationError, match="the dataset must be an iterable of rows"):

        @foreach("x", dataset)
        def ev(x):
            return em(True)


def test_decorated_function_exposes_only_fixture_parameters():
    @foreach("question,answer", [("q", "a")])
    def ev(question, model, answer, tokenizer=None):
        return em(True)

    params = inspect.signature(ev).parameters
    assert list(params) == ["model", "tokenizer"]
    assert all(p.kind is p.KEYWORD_ONLY for p in params.values())
    assert ev.__name__ == "ev"
    evaluation = get_evaluation(ev)
    assert evaluation.columns == ("question", "answer")
    assert evaluation.fixture_names == ("model", "tokenizer")
    assert get_evaluation(lambda: None) is None


# Rows -------------------------------------------------------------------------


def test_list_of_tuples(url):
    seen = []

    @foreach("question,answer", [("1+1", "2"), ("2+2", "5"), ("3+3", "6")])
    def ev(question, answer, model):
        seen.append((question, answer))
        return em(model(question) == answer)

    summary = run(ev, url, model=lambda q: str(eval(q)))
    assert seen == [("1+1", "2"), ("2+2", "5"), ("3+3", "6")]
    assert [r.item_id for r in summary.records] == [0, 1, 2]
    assert [r.dataset_row for r in summary.records] == [
        {"question": "1+1", "answer": "2"},
        {"question": "2+2", "answer": "5"},
        {"question": "3+3", "answer": "6"},
    ]
    assert summary.metrics == {"em": {"accuracy": pytest.approx(2 / 3)}}
    assert summary.errors == 0


def test_list_of_lists_works_like_tuples(url):
    @foreach("a,b", [[1, 1], [2, 3]])
    def ev(a, b):
        return em(a == b)

    assert run(ev, url).metrics == {"em": {"accuracy": 0.5}}


def test_list_of_dicts_ignores_extra_keys(url):
    rows = [
        {"question": "q0", "answer": "a0", "source": "x", "id": 7},
        {"answer": "a1", "question": "q1"},
    ]

    @foreach("question,answer", rows)
    def ev(question, answer):
        return em(question[1:] == answer[1:])

    summary = run(ev, url)
    assert [r.dataset_row for r in summary.records] == [
        {"question": "q0", "answer": "a0"},
        {"question": "q1", "answer": "a1"},
    ]
    assert summary.errors == 0


def test_dict_row_missing_a_key_after_row_0_is_that_rows_error(url):
    rows = [{"question": "q0", "answer": "a0"}, {"question": "q1"}, {"question": "q2", "answer": 2}]
    calls = []

    @foreach("question,answer", rows)
    def ev(question, answer):
        calls.append(question)
        return em(True)

    summary = run(ev, url)
    assert calls == ["q0", "q2"]
    errors = errors_of(summary)
    assert errors[0] is None and errors[2] is None
    assert errors[1].startswith("DatasetError: ev: row 1 has no key 'answer' (its keys: question)")
    assert summary.errors == 1
    assert summary.metrics == {"em": {"accuracy": pytest.approx(2 / 3)}}


def test_dict_row_0_missing_a_key_raises_and_fails_the_evaluation(url):
    calls = []

    @foreach("question,answer", [{"question": "q0"}, {"question": "q1", "answer": "a1"}])
    def ev(question, answer):
        calls.append(question)
        return em(True)

    with pytest.raises(DatasetError, match="ev: row 0 has no key 'answer'"):
        run(ev, url, experiment="exp")
    assert calls == []
    info = get_storage(url).evaluation_info("exp", "ev")
    assert info.status == "failed"


@pytest.mark.parametrize("rows", [[1, 2, 3], [(1,), (2,), (3,)], [[1], [2], [3]]])
def test_single_column_rows_are_scalars_or_1_tuples(url, rows):
    seen = []

    @foreach("x", rows)
    def ev(x):
        seen.append(x)
        return em(x > 1)

    summary = run(ev, url)
    assert seen == [1, 2, 3]
    assert [r.dataset_row for r in summary.records] == [{"x": 1}, {"x": 2}, {"x": 3}]
    assert summary.metrics == {"em": {"accuracy": pytest.approx(2 / 3)}}


def test_single_column_keeps_longer_tuples_whole(url):
    seen = []

    @foreach("pair", [(1, 2), ("a", "b")])
    def ev(pair):
        seen.append(pair)
        return em(True)

    run(ev, url)
    assert seen == [(1, 2), ("a", "b")]


def test_wrong_row_length_after_row_0_is_that_rows_error(url):
    @foreach("a,b", [(1, 1), (1, 2, 3), 5, (4, 4)])
    def ev(a, b):
        return em(a == b)

    summary = run(ev, url)
    errors = errors_of(summary)
    assert errors[0] is None and errors[3] is None
    assert errors[1] == (
        "DatasetError: ev: row 1 has 3 values but the columns are a,b (2); "
        "make every row match the column spec"
    )
    assert errors[2] == (
        "DatasetError: ev: row 2 is a int, but the columns a,b need a tuple, list or dict per row"
    )
    assert summary.metrics == {"em": {"accuracy": 0.5}}


def test_wrong_row_length_in_row_0_raises(url):
    @foreach("a,b", [(1,), (1, 1)])
    def ev(a, b):
        return em(True)

    with pytest.raises(DatasetError, match="row 0 has 1 values but the columns are a,b"):
        run(ev, url)


# Generators -------------------------------------------------------------------


def counting(rows):
    """A generator over ``rows`` and a list whose length is the number of rows pulled."""
    pulled: list[object] = []

    def gen():
        for row in rows:
            pulled.append(row)
            yield row

    return gen(), pulled


def test_generator_is_consumed_lazily(url):
    rows, pulled = counting([(i, i) for i in range(100)])
    seen_when_called = []

    @foreach("a,b", rows)
    def ev(a, b):
        seen_when_called.append(len(pulled))
        return em(True)

    summary = run(ev, url, samples=2)
    assert len(summary.records) == 2
    # the row is pulled right before it runs, and none past the samples
    assert seen_when_called == [1, 2]
    assert len(pulled) == 2


def test_infinite_generator_with_samples_terminates(url):
    rows, pulled = counting((i, i % 2) for i in itertools.count())

    @foreach("a,b", rows)
    def ev(a, b):
        return em(b == 0)

    summary = run(ev, url, samples=5)
    assert [r.item_id for r in summary.records] == [0, 1, 2, 3, 4]
    assert summary.metrics == {"em": {"accuracy": 0.6}}
    assert len(pulled) == 5


def test_infinite_async_generator_dataset_with_samples_terminates(url):
    rows, pulled = counting((i,) for i in itertools.count())

    @foreach("a", rows)
    async def ev(a):
        await asyncio.sleep(0)
        return em(True)

    summary = run(ev, url, samples=20)
    assert len(summary.records) == 20
    assert len(pulled) == 20


# Return values and row errors -------------------------------------------------


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (42, "TypeError: an evaluation must return a Score or a Result, got int (42)"),
        (None, "TypeError: an evaluation must return a Score or a Result, got NoneType"),
        (True, "TypeError: an evaluation must return a Score or a Result, got bool (True)"),
    ],
)
def test_returning_neither_score_nor_result_is_a_row_error(url, value, error):
    @foreach("x", [1, 2])
    def ev(x):
        return em(True) if x == 1 else value

    summary = run(ev, url)
    assert errors_of(summary) == {0: None, 1: error}


METRICS_WANTED = "TypeError: Score's metrics must be a list of Metric objects"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("em", True, accuracy), f"{METRICS_WANTED}: write [accuracy()], not accuracy"),
        (("em", True, [accuracy]), f"{METRICS_WANTED}: write [accuracy()], not [accuracy]"),
        (("em", True, accuracy()), f"{METRICS_WANTED}: write [accuracy()], not accuracy()"),
        (("em", True, [accuracy(), "mean"]), f"{METRICS_WANTED} such as [accuracy()], got 'mean'"),
        ((123, True, [accuracy()]), 'TypeError: Score\'s name must be a str such as "exact_match"'),
        (("em", True, [], ["k"]), "TypeError: Score's metadata must be a dict, got list"),
    ],
    ids=["factory", "factory-in-list", "bare-metric", "text-in-list", "int-name", "metadata"],
)
def test_a_score_checks_its_arguments_when_made(args, error):
    message = error.removeprefix("TypeError: ")
    with pytest.raises(TypeError) as refused:
        Score(*args)
    assert str(refused.value).startswith(message)
    assert "\n" not in str(refused.value)


def test_a_score_takes_a_tuple_of_metrics_and_any_storable_value():
    score = Score("em", {"nested": [1.5, None, float("nan")]}, (accuracy(), mean()))
    assert score.metrics == [accuracy(), mean()]
    assert Score("em", "text").metrics == [] and Score("em", None).metadata == {}


def test_a_refused_score_is_each_rows_error_and_the_evaluation_completes(url):
    """The rows error with the one line, their traceback ends in the row's own code, and
    the evaluation is stored as completed."""

    @foreach("x", [1, 2])
    def ev(x):
        return Score("right", x == 1, accuracy)

    line = inspect.getsourcelines(ev)[1] + 2
    summary = run(ev, url, experiment="exp")
    error = f"{METRICS_WANTED}: write [accuracy()], not accuracy (call the metric's factory)"
    assert errors_of(summary) == {0: error, 1: error}
    traceback = summary.records[0].traceback.rstrip().splitlines()
    frames = [text for text in traceback if text.startswith("  File ")]
    assert frames == [f'  File "{__file__}", line {line}, in ev'] and traceback[-1] == error
    assert get_storage(url).evaluation_info("exp", "ev").status == "completed"


def test_raising_row_is_stored_and_other_rows_still_scored(url):
    @foreach("x", [1, 2, 3, 4])
    def ev(x):
        if x == 2:
            raise ValueError("msg")
        if x == 3:
            raise RuntimeError()
        return em(True)

    summary = run(ev, url, experiment="exp")
    assert errors_of(summary) == {0: None, 1: "ValueError: msg", 2: "RuntimeError", 3: None}
    stored = get_storage(url).load_records("exp", "ev")
    assert [r.error for r in stored] == [None, "ValueError: msg", "RuntimeError", None]
    assert stored[1].dataset_row == {"x": 2}
    info = get_storage(url).evaluation_info("exp", "ev")
    assert info.status == "completed"
    assert info.metadata["rows"] == 4
    assert info.metadata["errors"] == 2


def test_score_is_wrapped_into_a_result(url):
    @foreach("x", [1])
    def ev(x):
        return Score("s", x, [mean()], metadata={"k": "v"})

    (record,) = run(ev, url).records
    assert isinstance(record.result, Result)
    assert [s.to_dict() for s in record.result.scores] == [
        {"name": "s", "value": 1, "metrics": ["mean"], "metadata": {"k": "v"}}
    ]


def test_result_with_several_scores_and_context(url):
    @foreach("x", [1, 2, 3, 4])
    def ev(x):
        return Result(
            Score("even", x % 2 == 0, [accuracy()]),
            Score("value", x, [mean(), accuracy()]),
            prompt=f"p{x}",
            model_response=f"r{x}",
        )

    summary = run(ev, url, experiment="exp")
    assert summary.metrics == {
        "even": {"accuracy": 0.5},
        "value": {"mean": 2.5, "accuracy": 1.0},
    }
    stored = get_storage(url).load_records("exp", "ev")
    assert [r.result.prompt for r in stored] == ["p1", "p2", "p3", "p4"]
    assert [r.result.model_response for r in stored] == ["r1", "r2", "r3", "r4"]
    info = get_storage(url).evaluation_info("exp", "ev")
    assert info.metrics == summary.metrics


def test_custom_metric_is_applied_and_restored_from_storage(url):
    @metric
    def spread() -> Metric:
        def compute(values):
            return float(max(values) - min(values)) if values else 0.0

        return compute

    @foreach("x", [3, 10, 4])
    def ev(x):
        return Score("value", x, [spread(), mean()])

    summary = run(ev, url, experiment="exp")
    assert summary.metrics == {"value": {"spread": 7.0, "mean": pytest.approx(17 / 3)}}
    # the records read back from storage name the metric, which is found again by name
    reread = EvaluationSummary(get_storage(url).load_records("exp", "ev"))
    assert reread.metrics == summary.metrics
    assert get_storage(url).evaluation_info("exp", "ev").metrics == summary.metrics


def test_errored_rows_count_as_false_in_summary(url):
    @foreach("x", [1, 2, 3, 4, 5])
    def ev(x):
        if x in (2, 4):
            raise ValueError(x)
        return Result(Score("ok", True, [accuracy()]), Score("n", 10, [mean()]))

    summary = run(ev, url)
    assert summary.errors == 2
    # 3 of 5 rows are True; the errored rows count as False (0 for the mean)
    assert summary.metrics == {"ok": {"accuracy": 0.6}, "n": {"mean": 6.0}}


def test_result_error_marks_the_row_failed(url):
    @foreach("x", [1, 2])
    def ev(x):
        return Result(em(True), error="refused" if x == 2 else None)

    summary = run(ev, url)
    assert summary.errors == 1
    assert summary.metrics == {"em": {"accuracy": 0.5}}


# Programmatic entry points ----------------------------------------------------


def test_run_returns_summary_and_stores_experiment(url):
    @foreach("x", [1, 2])
    def ev(x, offset):
        return em(x + offset == 3)

    summary = run(ev, url, experiment="named", offset=1)
    assert isinstance(summary, EvaluationSummary)
    storage = get_storage(url)
    assert [e.name for e in storage.experiments()] == ["named"]
    assert storage.experiments()[0].ephemeral is False
    info = storage.evaluation_info("named", "ev")
    assert info.status == "completed"
    assert info.metrics == {"em": {"accuracy": 0.5}}
    assert info.metadata["columns"] == ["x"]
    assert info.metadata["dataset"] == "list"
    assert info.metadata["function"].endswith("ev")


def test_run_without_experiment_makes_an_ephemeral_one(url):
    @foreach("x", [1])
    def ev(x):
        return em(True)

    run(ev, url)
    run(ev, url)
    experiments = get_storage(url).experiments()
    assert len(experiments) == 2
    assert all(e.ephemeral for e in experiments)
    assert experiments[0].name != experiments[1].name


def test_calling_the_evaluation_runs_it_in_default_storage(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    @foreach("x", [1, 2])
    def ev(x, model):
        return em(model(x))

    summary = ev(model=lambda x: x == 1)
    assert summary.metrics == {"em": {"accuracy": 0.5}}
    assert len(get_storage(f"json://{tmp_path / '.dotevals'}").experiments()) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "ev: missing value for model"),
        ({"model": 1, "other": 2}, "ev: other is neither a column nor a parameter"),
        ({"model": 1, "x": 2}, "x is neither a column nor a parameter"),
    ],
)
def test_run_checks_fixture_values(url, kwargs, message):
    @foreach("x", [1])
    def ev(x, model):
        return em(True)

    with pytest.raises(ConfigurationError, match=message):
        run(ev, url, **kwargs)


def test_run_rejects_a_function_that_is_not_an_evaluation(url):
    def plain(x):
        return em(True)

    with pytest.raises(ConfigurationError, match="decorate it with @foreach"):
        run(plain, url)


def test_runner_with_partials(url):
    @foreach("x", [1, 2, 3])
    def first(x, model):
        return em(model(x))

    @foreach("x", [1, 2])
    async def second(x, model):
        return em(model(x))

    results: dict[str, EvaluationSummary] = {}
    runner = Runner("exp", storage=url, progress=False, results_dict=results)
    asyncio.run(
        runner.run_evaluations(
            [
                functools.partial(first, model=lambda x: x > 1),
                functools.partial(second, model=lambda x: True),
            ]
        )
    )
    assert runner.experiment_name == "exp"
    assert set(runner.results) == {"first", "second"}
    assert runner.results["first"].metrics == {"em": {"accuracy": pytest.approx(2 / 3)}}
    assert runner.results["second"].metrics == {"em": {"accuracy": 1.0}}
    assert results == runner.results
    assert [o.name for o in runner.outcomes] == ["first", "second"]
    assert [o.new_rows for o in runner.outcomes] == [3, 2]
    assert not any(o.setup_error or o.error or o.teardown_error for o in runner.outcomes)
    assert get_storage(url).list_evaluations("exp") == ["first", "second"]


def test_runner_rejects_positional_partial(url):
    @foreach("x", [1])
    def ev(x, model):
        return em(True)

    runner = Runner(storage=url, progress=False)
    with pytest.raises(ConfigurationError, match="by keyword"):
        asyncio.run(runner.run_evaluations([functools.partial(ev, 1)]))


def test_failed_evaluation_does_not_stop_the_others(url):
    @foreach("a,b", [(1,)])
    def broken(a, b):
        return em(True)

    @foreach("x", [1])
    def fine(x):
        return em(True)

    runner = Runner("exp", storage=url, progress=False)
    asyncio.run(runner.run_evaluations([broken, fine]))
    assert [o.name for o in runner.outcomes] == ["broken", "fine"]
    assert isinstance(runner.outcomes[0].error, DatasetError)
    assert runner.outcomes[1].error is None
    assert set(runner.results) == {"fine"}
    storage = get_storage(url)
    assert storage.evaluation_info("exp", "broken").status == "failed"
    assert storage.evaluation_info("exp", "fine").status == "completed"


# Retries ----------------------------------------------------------------------


def counter_eval(decorator, exc_factory, rows=(1,)):
    calls: list[int] = []

    @decorator("x", list(rows))
    def ev(x):
        calls.append(x)
        raise exc_factory()

    return ev, calls


def test_int_retries_retry_connection_errors_with_growing_waits(url):
    decorator = ForEach(retries=2)
    sleeps: list[float] = []
    # keep the default policy but do not really sleep: record the waits instead
    decorator.retrying.sleep = sleeps.append
    ev, calls = counter_eval(decorator, lambda: ConnectionError("down"))

    summary = run(ev, url)
    assert calls == [1, 1, 1]
    assert errors_of(summary) == {0: "ConnectionError: down"}
    assert len(sleeps) == 2
    assert 0 < sleeps[0] < sleeps[1] <= 30


def test_int_retries_also_retry_timeouts(url):
    decorator = ForEach(retries=1)
    decorator.retrying.sleep = lambda seconds: None
    ev, calls = counter_eval(decorator, lambda: TimeoutError("slow"))
    assert errors_of(run(ev, url)) == {0: "TimeoutError: slow"}
    assert calls == [1, 1]


def test_retries_do_not_retry_other_errors(url):
    decorator = ForEach(retries=2)
    decorator.retrying.sleep = lambda seconds: pytest.fail("must not wait")
    ev, calls = counter_eval(decorator, lambda: ValueError("bad"))

    assert errors_of(run(ev, url)) == {0: "ValueError: bad"}
    assert calls == [1]


def test_zero_retries_is_one_call(url):
    ev, calls = counter_eval(ForEach(retries=0), lambda: ConnectionError("down"))
    assert errors_of(run(ev, url)) == {0: "ConnectionError: down"}
    assert calls == [1]


def test_retry_then_success_is_not_an_error(url):
    decorator = ForEach(
        retries=tenacity.Retrying(
            stop=tenacity.stop_after_attempt(5),
            retry=tenacity.retry_if_exception_type(ConnectionError),
            wait=tenacity.wait_none(),
            reraise=True,
        )
    )
    calls = []

    @decorator("x", [1, 2])
    def ev(x):
        calls.append(x)
        if calls.count(x) < 3:
            raise ConnectionError("flaky")
        return em(True)

    summary = run(ev, url)
    assert calls == [1, 1, 1, 2, 2, 2]
    assert summary.errors == 0
    assert summary.metrics == {"em": {"accuracy": 1.0}}


def test_custom_retrying_object(url):
    decorator = ForEach(retries=tenacity.Retrying(**FAST_KEYERROR_RETRY))
    ev, calls = counter_eval(decorator, lambda: KeyError("k"), rows=(1, 2))
    assert errors_of(run(ev, url)) == {0: "KeyError: 'k'", 1: "KeyError: 'k'"}
    assert calls == [1, 1, 2, 2]

    ev, calls = counter_eval(decorator, lambda: ConnectionError("down"))
    run(ev, url)
    assert calls == [1]


def test_async_evaluation_retries(url):
    decorator = ForEach(retries=tenacity.Retrying(**FAST_KEYERROR_RETRY))
    calls = []

    @decorator("x", [1, 2])
    async def ev(x):
        calls.append(x)
        await asyncio.sleep(0)
        if x == 1 or calls.count(x) == 1:
            raise KeyError("k")
        return em(True)

    summary = run(ev, url)
    assert sorted(calls) == [1, 1, 2, 2]
    assert errors_of(summary) == {0: "KeyError: 'k'", 1: None}


def test_async_evaluation_default_policy_does_not_retry_value_errors(url):
    calls = []

    @foreach("x", [1])
    async def ev(x):
        calls.append(x)
        raise ValueError("no")

    assert errors_of(run(ev, url)) == {0: "ValueError: no"}
    assert calls == [1]


@pytest.mark.parametrize("retries", [-1, 1.5, "3", True])
def test_bad_retries(retries):
    with pytest.raises(ConfigurationError, match="retries must be a number >= 0"):
        ForEach(retries=retries)


# Resume -----------------------------------------------------------------------


def test_resume_skips_completed_rows_and_reruns_errored_ones(url, tmp_path):
    flag = tmp_path / "flag"
    calls = []

    @foreach("x", [1, 2, 3])
    def ev(x):
        calls.append(x)
        if x == 2 and not flag.exists():
            flag.write_text("seen")
            raise ValueError("first time")
        return em(True)

    first = run(ev, url, experiment="exp")
    assert calls == [1, 2, 3]
    assert errors_of(first) == {0: None, 1: "ValueError: first time", 2: None}

    calls.clear()
    second = run(ev, url, experiment="exp")
    assert calls == [2]
    assert errors_of(second) == {0: None, 1: None, 2: None}
    assert second.metrics == {"em": {"accuracy": 1.0}}

    calls.clear()
    third = run(ev, url, experiment="exp")
    assert calls == []
    assert len(third.records) == 3


def test_samples_extend_a_run_in_steps(url):
    calls = []

    @foreach("x", list(range(5)))
    def ev(x):
        calls.append(x)
        return em(True)

    counts = []
    for expected_calls in ([0, 1], [2, 3], [4], []):
        calls.clear()
        summary = run(ev, url, experiment="exp", samples=2)
        assert calls == expected_calls
        counts.append(len(summary.records))
    assert counts == [2, 4, 5, 5]
    assert [r.item_id for r in get_storage(url).load_records("exp", "ev")] == [0, 1, 2, 3, 4]


def test_samples_zero_runs_nothing(url):
    calls = []

    @foreach("x", [1, 2])
    def ev(x):
        calls.append(x)
        return em(True)

    assert run(ev, url, samples=0).records == []
    assert calls == []


@pytest.mark.parametrize("samples", [-1, 1.5, "2", True])
def test_bad_samples(url, samples):
    @foreach("x", [1])
    def ev(x):
        return em(True)

    with pytest.raises(ConfigurationError, match="samples must be a whole number >= 0"):
        run(ev, url, samples=samples)


def test_resume_with_sqlite_storage(tmp_path):
    url = f"sqlite://{tmp_path / 'results.db'}"
    calls = []

    @foreach("x", [1, 2, 3])
    def ev(x):
        calls.append(x)
        if x == 3 and calls.count(3) == 1:
            raise ValueError("once")
        return em(True)

    run(ev, url, experiment="exp", samples=2)
    run(ev, url, experiment="exp")
    run(ev, url, experiment="exp")
    assert calls == [1, 2, 3, 3]
    assert (tmp_path / "results.db").exists()
    assert get_storage(url).evaluation_info("exp", "ev").metrics == {"em": {"accuracy": 1.0}}


# Registered datasets -----------------------------------------------------------


def test_registered_dataset(url):
    @foreach.arithmetic("test")
    def ev(question, answer):
        a, op, b = question.removeprefix("What is ").removesuffix("?").split()
        value = {"+": int(a) + int(b), "-": int(a) - int(b), "*": int(a) * int(b)}[op]
        return em(str(value) == answer)

    evaluation = get_evaluation(ev)
    assert evaluation.columns == ("question", "answer")
    assert evaluation.total == 40
    summary = run(ev, url)
    assert len(summary.records) == 40
    assert summary.metrics == {"em": {"accuracy": 1.0}}


def test_unknown_registered_dataset():
    with pytest.raises(DatasetError, match="unknown dataset 'no_such_dataset'.*'arithmetic'"):
        foreach.no_such_dataset("test")


def test_unknown_split_of_registered_dataset():
    with pytest.raises(DatasetError, match="has no split 'dev'"):
        foreach.arithmetic("dev")


# Event loops ------------------------------------------------------------------


def test_run_inside_a_running_loop_suggests_arun(url):
    @foreach("x", [1])
    def ev(x):
        return em(True)

    async def main():
        with pytest.raises(DotevalsError, match=r"await dotevals\.arun"):
            run(ev, url)

    asyncio.run(main())


def test_arun_inside_a_running_loop(url):
    @foreach("x", [1, 2])
    async def ev(x, model):
        return em(await model(x))

    async def model(x):
        await asyncio.sleep(0)
        return x == 2

    async def main():
        return await dotevals.arun(ev, storage=url, experiment="exp", progress=False, model=model)

    summary = asyncio.run(main())
    assert summary.metrics == {"em": {"accuracy": 0.5}}
    assert get_storage(url).evaluation_info("exp", "ev").status == "completed"


def test_arun_raises_the_evaluations_failure(url):
    @foreach("a,b", [(1,)])
    def ev(a, b):
        return em(True)

    with pytest.raises(DatasetError):
        asyncio.run(dotevals.arun(ev, storage=url, progress=False))


# Regressions: bugs found while writing these tests ------------------------------


def test_generator_dataset_run_again_in_the_same_process_is_refused(url):
    """A used-up generator used to restart at item_id 0, storing rows under wrong ids."""
    rows, pulled = counting((i,) for i in range(6))

    @foreach("x", rows)
    def ev(x):
        return em(True)

    assert len(run(ev, url, experiment="exp", samples=2).records) == 2
    with pytest.raises(DatasetError, match="ev: its dataset is a generator that an earlier run"):
        run(ev, url, experiment="exp", samples=2)
    assert len(pulled) == 2
    stored = get_storage(url).load_records("exp", "ev")
    assert [(r.item_id, r.dataset_row) for r in stored] == [(0, {"x": 0}), (1, {"x": 1})]


def test_a_read_generator_goes_once_its_evaluation_is_gone(url):
    def define() -> tuple[Any, weakref.ref[Any]]:
        rows = (i for i in range(3))

        @foreach("x", rows)
        def ev(x):
            return em(True)

        return ev, weakref.ref(rows)

    ev, rows = define()
    assert len(run(ev, url, experiment="exp").records) == 3
    del ev
    gc.collect()
    assert rows() is None


def test_an_iterator_without_weak_references_read_by_a_method_is_refused_again(url):
    class Suite:
        @foreach("x", zip(range(4)))
        def ev(self, x):
            return em(True)

    assert len(run(Suite().ev, url, experiment="exp", samples=2).records) == 2
    with pytest.raises(DatasetError, match="ev: its dataset is a generator that an earlier run"):
        run(Suite().ev, url, experiment="exp")


def test_metric_with_arguments_survives_resume(url):
    """Storage used to keep only a metric's name: one made with arguments vanished on resume."""

    @metric
    def at_least(threshold):
        def compute(values):
            return sum(v >= threshold for v in values) / len(values) if values else 0.0

        return compute

    @foreach("x", [1, 5, 10, 20])
    def ev(x):
        return Result(Score("five", x, [at_least(5)]), Score("ten", x, [at_least(10)]))

    first = run(ev, url, experiment="exp", samples=2)
    assert first.metrics == {"five": {"at_least(5)": 0.5}, "ten": {"at_least(10)": 0.0}}
    second = run(ev, url, experiment="exp")
    assert second.metrics == {"five": {"at_least(5)": 0.75}, "ten": {"at_least(10)": 0.5}}
    assert get_storage(url).evaluation_info("exp", "ev").metrics == second.metrics
