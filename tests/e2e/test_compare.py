"""``dotevals compare``: paired comparison of two experiments, on real storage.

Reference intervals were computed once with scipy 1.17 on the per-row
differences ``d = B - A``: ``scipy.stats.norm.interval(0.95, loc=d.mean(),
scale=scipy.stats.sem(d))``.
"""

from __future__ import annotations

import json

import pytest

from dotevals.cli import main
from dotevals.metrics import accuracy, mean
from dotevals.models import Record, Result, Score
from dotevals.storage import EvaluationInfo, get_storage

CORRECT_A = [1, 1, 0, 1, 0, 1, 1, 0, 1, 1]
CORRECT_B = [1, 0, 1, 1, 1, 1, 1, 1, 0, 1]


SIZES_A = [0.2, 0.5, 0.9, 0.4, 0.7]
SIZES_B = [0.3, 0.5, 0.6, 0.8, 0.9]


def _records(correct: list[int], sizes: list[float] | None = None, start: int = 0) -> list:
    records = []
    for i, ok in enumerate(correct, start):
        scores = [Score("em", bool(ok), [accuracy()])]
        if sizes is not None:
            scores.append(Score("size", sizes[i - start], [mean()]))
        records.append(Record(Result(*scores), i, {"q": f"question {i}"}))
    return records


@pytest.fixture(params=["json", "sqlite"])
def url(request, tmp_path):
    """Experiments ``a`` and ``b``: ``eval_qa`` (10 paired rows, plus one row only A ran
    and two only B ran), ``eval_size`` (5 paired rows), ``eval_old`` only in A."""
    url = f"{request.param}://{tmp_path / 'store'}"
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
    code = main(["compare", *argv])
    out, err = capsys.readouterr()
    return code, out, err


TOY_EVAL = """
import os

from dotevals import Score, foreach
from dotevals.metrics import accuracy

WRONG = {"small": {1, 4, 6}, "large": {6}}[os.environ["TOY_MODEL"]]


@foreach("i", range(8))
def eval_toy(i):
    return Score("em", i not in WRONG, [accuracy()])
"""


def test_two_real_runs_compared(pytester, monkeypatch, capsys):
    """The same evaluation run by pytest with two toy models, then compared."""
    pytester.makepyfile(eval_toy=TOY_EVAL)
    url = f"sqlite://{pytester.path / 'results.db'}"
    for model in ("small", "large"):
        monkeypatch.setenv("TOY_MODEL", model)
        result = pytester.runpytest(
            "-p", "no:cacheprovider", "--storage", url, "--experiment", model
        )
        result.assert_outcomes(passed=1)
    capsys.readouterr()
    code, out, _ = compare(capsys, "small", "large", "--storage", url, "--format", "json")
    assert code == 0
    ((score,),) = [e["scores"] for e in json.loads(out)["evaluations"]]
    assert (score["regressed"], score["improved"]) == (0, 2)
    # d = [0, 1, 0, 0, 1, 0, 0, 0]: scipy norm.interval(0.95, 0.25, sem(d)=0.16366...)
    difference = score["metrics"][0]["difference"]
    assert (difference["value"], difference["low"], difference["high"]) == pytest.approx(
        (0.25, -0.07077440423364478, 0.5707744042336448)
    )
