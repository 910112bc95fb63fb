"""``dotevals compare``: paired comparison of two experiments, on real storage.

Reference intervals were computed once with scipy 1.17 on the per-row
differences ``d = B - A``: ``scipy.stats.norm.interval(0.95, loc=d.mean(),
scale=scipy.stats.sem(d))``.
"""

from __future__ import annotations

import json
import math
import statistics

import pytest
from cli_runs import cli_output, run_cli
from stores import KINDS, storage_url

from dotevals.compare import compare_evaluation
from dotevals.metrics import accuracy, mean, metric
from dotevals.models import Record, Result, Score
from dotevals.storage import EvaluationInfo, get_storage

CORRECT_A = [1, 1, 0, 1, 0, 1, 1, 0, 1, 1]
CORRECT_B = [1, 0, 1, 1, 1, 1, 1, 1, 0, 1]
# scipy on d = B - A: mean 0.1, sem 0.2333..., norm.interval -> (-0.35732..., 0.55732...)
PAIRED_ACCURACY = (0.1, 0.2333333333333333, -0.3573249297260126, 0.5573249297260126)
SIZES_A = [0.2, 0.5, 0.9, 0.4, 0.7]
SIZES_B = [0.3, 0.5, 0.6, 0.8, 0.9]
PAIRED_MEAN = (0.08, 0.11575836902790228, -0.14688223420378532, 0.30688223420378535)


def _records(correct: list[int], sizes: list[float] | None = None, start: int = 0) -> list:
    records = []
    for i, ok in enumerate(correct, start):
        scores = [Score("em", bool(ok), [accuracy()])]
        if sizes is not None:
            scores.append(Score("size", sizes[i - start], [mean()]))
        records.append(Record(Result(*scores), i, {"q": f"question {i}"}))
    return records


@pytest.fixture(params=KINDS)
def paired_url(request, tmp_path):
    """Experiments ``a`` and ``b``: ``eval_qa`` (10 paired rows, plus one row only A ran
    and two only B ran), ``eval_size`` (5 paired rows), ``eval_old`` only in A."""
    url = storage_url(request.param, tmp_path)
    storage = get_storage(url)
    for name in ("a", "b"):
        storage.create_experiment(name)
        for evaluation in ("eval_qa", "eval_size", "eval_old")[: 3 if name == "a" else 2]:
            storage.save_evaluation(name, EvaluationInfo(evaluation, status="completed"))
    storage.add_records("a", "eval_qa", _records(CORRECT_A) + _records([1], start=10))
    storage.add_records("b", "eval_qa", _records(CORRECT_B) + _records([0, 1], start=11))
    storage.add_records("a", "eval_size", _records([1] * 5, SIZES_A))
    storage.add_records("b", "eval_size", _records([1] * 5, SIZES_B))
    storage.add_records("a", "eval_old", _records([1]))
    storage.close()
    return url


def compare(capsys, *argv: str) -> tuple[int, str, str]:
    return run_cli(capsys, "compare", *argv)


def test_paired_difference_of_accuracy_and_mean(capsys, paired_url):
    code, out, err = compare(capsys, "a", "b", "--storage", paired_url, "--format", "json")
    assert code == 0 and err == ""
    doc = json.loads(out)
    assert (doc["a"], doc["b"]) == ("a", "b")
    assert doc["evaluations_only_in_a"] == ["eval_old"] and doc["evaluations_only_in_b"] == []
    qa, size = sorted(doc["evaluations"], key=lambda e: e["name"])
    assert (qa["paired_rows"], qa["only_in_a"], qa["only_in_b"]) == (10, 1, 2)
    (em,) = qa["scores"]
    assert (em["regressed"], em["improved"]) == (2, 3)
    assert "regressed_rows" not in em  # only with --rows
    (acc,) = em["metrics"]
    assert acc["a"]["value"] == pytest.approx(8 / 11)  # A's value over all its rows
    assert acc["b"]["value"] == pytest.approx(9 / 12)
    diff = acc["difference"]
    assert (diff["value"], diff["stderr"], diff["low"], diff["high"]) == pytest.approx(
        PAIRED_ACCURACY
    )
    assert diff["method"] == "paired normal"
    means = next(s for s in size["scores"] if s["score"] == "size")
    diff = means["metrics"][0]["difference"]
    assert (diff["value"], diff["stderr"], diff["low"], diff["high"]) == pytest.approx(PAIRED_MEAN)
    assert (means["regressed"], means["improved"]) == (1, 3)


def test_table_counts_the_rows_only_one_side_ran(capsys, paired_url):
    code, out, _ = compare(capsys, "a", "b", "--storage", paired_url)
    assert code == 0
    line = next(line.split() for line in out.splitlines() if line.startswith("eval_qa "))
    low, high = PAIRED_ACCURACY[2:]
    # A 0.7273 and B 0.7500 are over each side's rows, B - A over the 10 paired ones:
    # the difference is marked, and a note says so, so it does not read as a wrong sum
    assert line == ["eval_qa", "em", "accuracy", "0.7273", "0.7500", "+0.1000*"] + [
        f"[{low:.4f},",
        f"{high:.4f}]",
        "10",
        "2",
        "3",
    ]
    assert "eval_qa: 10 rows in both; only in A: 1, only in B: 2" in out
    assert "evaluations only in A: eval_old" in out
    assert "* B - A is over the rows both ran (paired rows), while A and B are each" in out


def test_a_difference_over_the_same_rows_as_a_and_b_is_not_marked(capsys, json_results_url):
    out = cli_output(capsys, "compare", "a", "b", "--storage", json_results_url)
    assert "*" not in out


def test_rows_lists_the_rows_that_changed(capsys, paired_url):
    code, out, _ = compare(
        capsys, "a", "b", "--storage", paired_url, "--evaluation", "eval_qa", "--rows"
    )
    assert code == 0
    assert "eval_size" not in out and "eval_old" not in out
    section = out.split("Rows of 'eval_qa' whose em changed (5)")[1].strip().splitlines()
    assert section[0].split() == ["item_id", "change", "dataset_row", "A", "B"]
    changes = [line.split() for line in section[2:]]
    assert [c[:2] for c in changes] == [["1", "right->wrong"], ["8", "right->wrong"]] + [
        [str(i), "wrong->right"] for i in (2, 4, 7)
    ]
    assert changes[0][2:] == ['{"q":', '"question', '1"}', "True", "False"]


def test_errored_rows_count_as_wrong():
    ok = Record(Result(Score("em", True, [accuracy()])), 0, {})
    errored = Record(Result(), 0, {}, error="TimeoutError: slow")
    comparison = compare_evaluation("ev", [ok], [errored])
    (score,) = comparison.scores
    assert [c.item_id for c in score.regressed] == [0] and score.improved == []
    assert score.metrics[0].difference.value == -1.0


@metric
def median_size():
    def compute(values):
        return statistics.median(float(v) for v in values)

    return compute


def test_other_metrics_get_a_paired_bootstrap():
    rows_a = [Record(Result(Score("s", v, [median_size()])), i, {}) for i, v in enumerate(SIZES_A)]
    rows_b = [Record(Result(Score("s", v, [median_size()])), i, {}) for i, v in enumerate(SIZES_B)]
    first = compare_evaluation("ev", rows_a, rows_b).scores[0].metrics[0]
    again = compare_evaluation("ev", rows_a, rows_b).scores[0].metrics[0]
    assert first == again  # a fixed seed: the same interval every time
    assert (first.a.value, first.b.value) == (0.5, 0.6)
    assert first.difference.value == pytest.approx(0.1)
    assert first.difference.method == "bootstrap"
    assert first.difference.low <= 0.1 <= first.difference.high


def test_rows_with_different_inputs_are_counted():
    a = [Record(Result(Score("em", True, [accuracy()])), 0, {"q": "one"})]
    b = [Record(Result(Score("em", True, [accuracy()])), 0, {"q": "two"})]
    assert compare_evaluation("ev", a, b).different_inputs == 1


def test_unknown_experiment_or_evaluation_is_a_clear_error(capsys, paired_url):
    code, out, err = compare(capsys, "a", "nope", "--storage", paired_url)
    assert (code, out) == (1, "")
    assert err == (
        f"error: experiment 'nope' not found in {paired_url} "
        f"(see 'dotevals list --storage {paired_url}')\n"
    )
    code, _, err = compare(capsys, "a", "b", "--storage", paired_url, "--evaluation", "eval_old")
    assert code == 1
    assert err == (
        f"error: evaluation 'eval_old' not found in experiment 'b' in {paired_url} "
        "(its evaluations: 'eval_qa', 'eval_size')\n"
    )


def _one_score(values: list, metrics: list) -> list[Record]:
    return [Record(Result(Score("s", v, metrics)), i, {}) for i, v in enumerate(values)]


def test_a_score_with_no_metric_in_common_is_in_the_table(capsys, url):
    storage = get_storage(url)
    for name, metrics in (("a", [mean()]), ("b", [accuracy()])):
        storage.create_experiment(name)
        storage.save_evaluation(name, EvaluationInfo("ev", status="completed"))
        storage.add_records(name, "ev", _one_score([1, 0], metrics))
    storage.close()
    code, out, err = compare(capsys, "a", "b", "--storage", url)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    row = next(line for line in lines if line.startswith("ev "))
    assert row.split() == ["ev", "s", "-", "-", "-", "-", "-", "2", "0", "0"]
    assert "  s: metrics only in A: mean" in lines
    assert "  s: metrics only in B: accuracy" in lines
    code, out, _ = compare(capsys, "a", "b", "--storage", url, "--format", "json")
    (score,) = json.loads(out)["evaluations"][0]["scores"]
    assert (score["metrics_only_in_a"], score["metrics_only_in_b"]) == (["mean"], ["accuracy"])


def test_values_that_are_no_finite_numbers_are_compared_without_a_crash():
    nan_a = _one_score([0.5, math.nan], [mean()])
    huge_b = _one_score([0.5, 10**400], [mean()])
    (score,) = compare_evaluation("ev", nan_a, huge_b).scores
    (compared,) = score.metrics
    assert math.isnan(compared.a.value) and compared.b.value == math.inf
    assert math.isnan(compared.difference.value)
    assert score.regressed == score.improved == []  # NaN has no order
    (score,) = compare_evaluation("ev", nan_a, _one_score([0.5, "abc"], [mean()])).scores
    assert score.metrics == []
    assert score.metric_errors == [
        "metric mean: its value 'abc' is str, not a number: return numbers for mean(), "
        "or true/false values under accuracy()"
    ]
