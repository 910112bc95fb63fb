"""Repeats: each (row, epoch) stored once, reducers, pass@k against its formula, and
metrics of one factory with different arguments kept apart."""

from __future__ import annotations

import math
import random

import pytest
from stores import KINDS, opened, storage_url

import dotevals
from dotevals import Result, Score, foreach
from dotevals.errors import ConfigurationError
from dotevals.llm import current_row
from dotevals.metrics import Share, accuracy, get_reducer, mean, metric, pass_at, pass_hat

#: Each row's chance to pass, known and seeded: the fake model below draws with it.
CHANCES = [0.0, 0.1, 0.35, 0.5, 0.8, 0.95, 1.0, 0.6]


def fake_model_passes(item_id: int) -> bool:
    """A model that passes row ``item_id`` with its known chance, drawn from the row's
    own seed (so each epoch draws anew, and a rerun draws the same)."""
    row = current_row()
    assert row is not None and row.item_id == item_id
    return random.Random(row.seed).random() < CHANCES[item_id]


def exact_pass_at(n: int, c: int, k: int) -> float:
    """Chen et al. 2021, eq. 1: 1 - C(n-c, k) / C(n, k)."""
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


@pytest.fixture(params=KINDS)
def url(request, tmp_path):
    return storage_url(request.param, tmp_path)


def test_pass_at_k_matches_the_formula_from_the_stored_counts(url):
    @foreach("i", range(len(CHANCES)), epochs=10, reducers=["mean", "pass_at_1", "pass_at_5"])
    def eval_chances(i):
        return Score("passed", fake_model_passes(i), [accuracy()])

    summary = dotevals.run(eval_chances, storage=url, experiment="e", progress=False)
    with opened(url) as storage:
        records = storage.load_records("e", "eval_chances")
    assert sorted((r.item_id, r.epoch) for r in records) == [
        (i, e) for i in range(len(CHANCES)) for e in range(10)
    ]
    passes = {i: 0 for i in range(len(CHANCES))}
    for record in records:
        passes[record.item_id] += record.result.scores[0].value is True
    assert passes[0] == 0 and passes[6] == 10  # the sure rows
    for reducer, k in (("pass_at(1)", 1), ("pass_at(5)", 5)):
        expected = sum(exact_pass_at(10, c, k) for c in passes.values()) / len(passes)
        assert summary.reduced[reducer]["passed"]["accuracy"].value == pytest.approx(expected)
    # the first reducer's metrics are the evaluation's metrics: the share of passes
    assert summary.metrics["passed"]["accuracy"] == pytest.approx(sum(passes.values()) / 80)
    # intervals count rows, not epochs: the mean of 8 per-row values
    per_row = [c / 10 for c in passes.values()]
    estimate = summary.reduced["mean"]["passed"]["accuracy"]
    assert estimate.stderr == pytest.approx(
        math.sqrt(sum((x - sum(per_row) / 8) ** 2 for x in per_row) / 7) / math.sqrt(8)
    )
    assert (summary.rows, summary.samples, summary.epochs) == (8, 80, 10)


def test_each_epoch_draws_its_own_seed_and_a_rerun_draws_the_same(tmp_path):
    seeds = []

    @foreach("i", range(2), epochs=3)
    def eval_seeds(i):
        seeds.append((i, current_row().epoch, current_row().seed))
        return Score("ok", True)

    dotevals.run(eval_seeds, storage=storage_url("json", tmp_path), progress=False)
    first = sorted(seeds)
    assert len({seed for _, _, seed in first}) == 6
    seeds.clear()
    dotevals.run(eval_seeds, storage=storage_url("json", tmp_path), progress=False)
    assert sorted(seeds) == first
    seeds.clear()
    dotevals.run(eval_seeds, storage=storage_url("json", tmp_path), progress=False, seed=7)
    assert {s for *_, s in seeds}.isdisjoint({s for *_, s in first})


def test_pass_hat_is_every_one_of_k_passing_unbiased():
    assert pass_hat(3)([True] * 6 + [False] * 4) == pytest.approx(
        math.comb(6, 3) / math.comb(10, 3)
    )
    assert pass_at(2)([True, False, False]) == pytest.approx(exact_pass_at(3, 1, 2))
    assert isinstance(pass_at(2)([True, False]), Share)


@pytest.mark.parametrize(
    ("name", "values", "expected"),
    [
        ("mean", [True, False, True, True], 0.75),
        ("mean", [1.0, 2.0, 6.0], 3.0),
        ("median", [1, 7, 3], 3),
        ("majority", ["b", "a", "b", "a"], "b"),
        ("max", [True, False], True),
        ("min", [True, False], False),
        ("pass_at_2", [True, False, False, False], exact_pass_at(4, 1, 2)),
        ("pass_hat(2)", [True, True, False], 1 / 3),
    ],
)
def test_reducers_are_found_by_name(name, values, expected):
    assert get_reducer(name)(values) == pytest.approx(expected)


def test_a_reducer_that_needs_more_epochs_than_there_are_is_refused():
    with pytest.raises(ConfigurationError, match=r"pass_at\(5\) needs 5 epochs .* has 3"):

        @foreach("i", range(2), epochs=3, reducers=["pass_at_5"])
        def eval_short(i):
            return Score("ok", True)

    with pytest.raises(ConfigurationError, match="eval_unknown: no reducer named 'nope'"):

        @foreach("i", range(2), reducers=["nope"])
        def eval_unknown(i):
            return Score("ok", True)


def test_two_metrics_of_one_factory_with_different_arguments_are_two(tmp_path):
    @metric
    def share_above(threshold=0.5):
        def compute(values):
            return sum(v >= threshold for v in values) / len(values)

        return compute

    @foreach("x", [0.2, 0.6, 0.9])
    def eval_levels(x):
        return Score("level", x, [share_above(), share_above(0.8), mean()])

    summary = dotevals.run(eval_levels, storage=storage_url("sqlite", tmp_path), progress=False)
    assert summary.metrics["level"] == {
        "share_above": pytest.approx(2 / 3),
        "share_above(0.8)": pytest.approx(1 / 3),
        "mean": pytest.approx(1.7 / 3),
    }


def test_samples_counts_rows_with_all_their_epochs(tmp_path):
    @foreach("i", range(5), epochs=4)
    def eval_rows(i):
        return Score("ok", True)

    url = storage_url("json", tmp_path)
    first = dotevals.run(eval_rows, storage=url, experiment="e", samples=2, progress=False)
    assert (first.rows, first.samples) == (2, 8)
    second = dotevals.run(eval_rows, storage=url, experiment="e", progress=False)
    assert (second.rows, second.samples) == (5, 20)


def test_resume_runs_only_the_missing_and_errored_epochs_of_a_row(tmp_path):
    calls = []
    failing = {(1, 2)}

    @foreach("i", range(3), epochs=3)
    def eval_flaky(i):
        calls.append((i, current_row().epoch))
        if (i, current_row().epoch) in failing:
            raise RuntimeError("model down")
        return Score("ok", True)

    url = storage_url("sqlite", tmp_path)
    dotevals.run(eval_flaky, storage=url, experiment="e", progress=False)
    assert len(calls) == 9
    calls.clear()
    failing.clear()
    summary = dotevals.run(eval_flaky, storage=url, experiment="e", progress=False)
    assert calls == [(1, 2)]
    assert (summary.samples, summary.errors) == (9, 0)


def test_epochs_from_the_run_apply_to_evaluations_without_their_own(tmp_path):
    @foreach("i", range(2))
    def eval_plain(i):
        return Result(Score("ok", True))

    summary = dotevals.run(
        eval_plain, storage=storage_url("json", tmp_path), epochs=3, progress=False
    )
    assert (summary.samples, list(summary.reduced)) == (6, ["mean"])


def test_show_export_compare_and_the_report_know_epochs(tmp_path, capsys):
    from cli_runs import run_cli

    outcomes = {"a": lambda i, e: e % 2 == 0, "b": lambda i, e: i != 1}

    @foreach("i", range(3), epochs=4, reducers=["mean", "pass_at_2"])
    def eval_both(i, outcome):
        return Score("ok", outcome(i, current_row().epoch), [accuracy()])

    url = storage_url("json", tmp_path)
    for name, outcome in outcomes.items():
        dotevals.run(eval_both, storage=url, experiment=name, outcome=outcome, progress=False)
    code, out, _ = run_cli(capsys, "show", "a", "--storage", url, "--format", "json", "--full")
    (shown,) = __import__("json").loads(out)["evaluations"]
    assert (shown["rows"], shown["samples"], shown["epochs"]) == (3, 12, 4)
    assert shown["reduced"]["pass_at(2)"]["ok"]["accuracy"]["value"] == pytest.approx(
        exact_pass_at(4, 2, 2)
    )
    assert [(r["item_id"], r.get("epoch", 0)) for r in shown["records"]][:5] == [
        (0, 0),
        (0, 1),
        (0, 2),
        (0, 3),
        (1, 0),
    ]
    code, out, _ = run_cli(capsys, "show", "a", "--storage", url)
    assert "pass_at(2)" in out and "epochs" in out
    code, out, _ = run_cli(capsys, "export", "a", "--storage", url, "--format", "jsonl")
    lines = [__import__("json").loads(line) for line in out.splitlines()]
    assert [(line["item_id"], line["epoch"]) for line in lines] == [
        (i, e) for i in range(3) for e in range(4)
    ]
    code, out, _ = run_cli(capsys, "compare", "a", "b", "--storage", url, "--format", "json")
    (compared,) = __import__("json").loads(out)["evaluations"]
    (score,) = compared["scores"]
    # rows' reduced values (mean) are paired: a gives 0.5 per row, b 1, 0, 1
    assert score["metrics"][0]["difference"]["value"] == pytest.approx((0.5 - 0.5 + 0.5) / 3)
    page = tmp_path / "report.html"
    code, _, _ = run_cli(capsys, "report", "a", "b", "--storage", url, "-o", str(page))
    text = page.read_text()
    assert code == 0 and "accuracy [pass_at(2)]" in text and '<th class="num">epochs</th>' in text
