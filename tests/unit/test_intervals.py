"""Standard errors and 95 % intervals of metrics, checked against reference values.

Reference numbers were computed once with statsmodels 0.15 and scipy 1.17:
``statsmodels.stats.proportion.proportion_confint(k, n, method="wilson")`` for
proportions, ``scipy.stats.norm.interval(0.95, loc=mean, scale=scipy.stats.sem(x))``
for means.
"""

from __future__ import annotations

import math
import statistics

import pytest
from stores import opened

import dotevals
from dotevals import foreach
from dotevals._report.format import number, signed
from dotevals.errors import MetricError
from dotevals.intervals import Estimate, bootstrap
from dotevals.metrics import accuracy, mean, metric
from dotevals.models import EvaluationSummary, Record, Result, Score

# (successes, n, low, high) from statsmodels proportion_confint(method="wilson")
WILSON = [
    (3, 4, 0.30064184258240184, 0.9544127391902995),
    (1, 2, 0.09453120573423068, 0.9054687942657693),
    (0, 10, 0.0, 0.27753279986288926),
    (10, 10, 0.7224672001371106, 1.0),
    (80, 100, 0.7111708344068411, 0.8666330666689676),
    (1, 3, 0.06149194472039626, 0.7923403991979523),
]


@pytest.mark.parametrize(("k", "n", "low", "high"), WILSON)
def test_accuracy_has_the_wilson_interval(k, n, low, high):
    estimate = accuracy().estimate([True] * k + [False] * (n - k))
    assert estimate.value == k / n
    assert estimate.low == pytest.approx(low, abs=1e-12)
    assert estimate.high == pytest.approx(high, abs=1e-12)
    assert estimate.stderr == pytest.approx(math.sqrt(k / n * (1 - k / n) / n))
    assert estimate.method == "wilson"


def test_mean_has_the_normal_interval():
    # scipy: mean 0.54, sem 0.1208304597359457, norm.interval -> (0.30317..., 0.77682...)
    estimate = mean().estimate([0.2, 0.5, 0.9, 0.4, 0.7])
    assert estimate.value == pytest.approx(0.54)
    assert estimate.stderr == pytest.approx(0.1208304597359457)
    assert estimate.low == pytest.approx(0.30317665068212934)
    assert estimate.high == pytest.approx(0.7768233493178707)
    assert estimate.method == "normal"


def test_too_few_values_give_no_interval():
    assert accuracy().estimate([]) == Estimate(0.0)
    assert mean().estimate([]) == Estimate(0.0)
    assert mean().estimate([0.5, None]) == Estimate(0.5)  # one number: no spread to measure
    assert Estimate(0.5).format() == "0.5000"


def test_a_metric_still_returns_its_value():
    assert accuracy()([True, False, True, True]) == 0.75
    assert mean()([1, 2, True]) == pytest.approx(4 / 3)


def test_errored_rows_count_as_false_in_the_interval():
    score = Score("em", True, [accuracy()])
    records = [Record(Result(score), i, {}) for i in range(2)]
    records.append(Record(Result(), 2, {}, error="ValueError: boom"))
    estimate = EvaluationSummary(records).estimates["em"]["accuracy"]
    # 2 of 3: statsmodels proportion_confint(2, 3, method="wilson")
    low, high = 0.2076596008020477, 0.9385080552796037
    assert estimate.value == pytest.approx(2 / 3)
    assert (estimate.low, estimate.high) == (pytest.approx(low), pytest.approx(high))


def test_bootstrap_is_reproducible_and_close_to_the_normal_interval():
    values = [((i * 7919) % 101) / 100 for i in range(400)]
    statistic = statistics.fmean
    first, again = bootstrap(statistic, values), bootstrap(statistic, values)
    assert first == again and first.method == "bootstrap"
    assert first.value == pytest.approx(statistics.fmean(values))
    normal = Estimate.of_mean(values)
    # 400 values: the bootstrap standard error is within a few percent of s/sqrt(n)
    assert first.stderr == pytest.approx(normal.stderr, rel=0.1)
    assert first.low == pytest.approx(normal.low, abs=0.01)
    assert first.high == pytest.approx(normal.high, abs=0.01)
    assert bootstrap(statistic, [0.3]) == Estimate(0.3)


@metric
def median_with_interval():
    def compute(values):
        return bootstrap(statistics.median, [float(v) for v in values], resamples=200)

    return compute


@metric
def plain_max():
    def compute(values):
        return max(values)

    return compute


def test_custom_metrics_give_an_interval_by_returning_an_estimate():
    score = Score("latency", 0, [median_with_interval(), plain_max()])
    records = [
        Record(Result(Score("latency", v, score.metrics)), i, {})
        for i, v in enumerate([3, 1, 4, 1, 5, 9, 2, 6])
    ]
    summary = EvaluationSummary(records)
    assert summary.metrics == {"latency": {"median_with_interval": 3.5, "plain_max": 9}}
    median = summary.estimates["latency"]["median_with_interval"]
    assert median.method == "bootstrap" and median.low <= 3.5 <= median.high
    assert summary.estimates["latency"]["plain_max"] == Estimate(9)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1, math.nan, 3], "nan"),
        ([1, math.inf], "inf"),
        ([-math.inf, 1], "-inf"),
        ([math.inf, -math.inf], "nan"),
        ([1, 10**400], "inf"),  # an integer beyond floats counts as an infinity
    ],
    ids=["nan", "inf", "-inf", "both infinities", "huge integer"],
)
def test_a_mean_of_non_finite_values_is_that_value_without_interval(values, expected):
    estimate = mean().estimate(values)
    assert repr(estimate.value) == expected
    assert (estimate.stderr, estimate.low, estimate.high) == (None, None, None)


@pytest.mark.parametrize("odd", [math.nan, math.inf], ids=["nan", "inf"])
def test_a_bootstrap_over_values_that_are_not_finite_has_no_interval(odd):
    estimate = bootstrap(statistics.fmean, [1.0, odd, 3.0])
    assert repr(estimate.value) == repr(odd) and estimate.low is None


def test_a_mean_of_huge_finite_values_stays_finite():
    assert mean().estimate([1.5e308, 1.5e308]).value == 1.5e308  # their sum is beyond floats
    spread = mean().estimate([1.7e308, -1.7e308, 1.7e308])
    assert spread.value == pytest.approx(1.7e308 / 3)
    assert spread.stderr is None  # their spread is beyond floats: no interval


def test_text_under_mean_leaves_that_metric_out_and_says_why():
    records = [
        Record(Result(Score("s", v, [mean(), accuracy()])), i, {})
        for i, v in enumerate([1, "abc", 3])
    ]
    summary = EvaluationSummary(records)
    assert summary.metrics == {"s": {"accuracy": 1.0}}
    assert summary.metric_errors == [
        "score 's', metric mean: its value 'abc' is str, not a number: return numbers "
        "for mean(), or true/false values under accuracy()"
    ]


@pytest.mark.parametrize(
    ("value", "shown", "difference"),
    [
        (0.5, "0.5000", "+0.5000"),
        (math.nan, "nan", "nan"),
        (math.inf, "inf", "+inf"),
        (-math.inf, "-inf", "-inf"),
        (10**400, "inf", "+inf"),
    ],
    ids=["number", "nan", "inf", "-inf", "huge integer"],
)
def test_metric_values_print_as_numbers_nan_and_infinities(value, shown, difference):
    assert (number(value), signed(value)) == (shown, difference)


def test_dotevals_run_raises_one_line_for_text_under_mean(tmp_path):
    @foreach("v", [1, "yes"])
    def eval_text(v):
        return Score("answer", v, [mean()])

    with pytest.raises(MetricError) as error:
        dotevals.run(eval_text, storage=f"json://{tmp_path}", experiment="e")
    assert str(error.value) == (
        "eval_text: score 'answer', metric mean: its value 'yes' is str, not a number: "
        "return numbers for mean(), or true/false values under accuracy()"
    )
    with opened(f"json://{tmp_path}") as storage:
        info = storage.evaluation_info("e", "eval_text")
    assert info is not None and info.status == "failed"
