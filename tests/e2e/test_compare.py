"""``dotevals compare`` of two experiments written by real pytest sessions.

The reference interval was computed once with scipy 1.17 on the per-row
differences ``d = B - A``: ``scipy.stats.norm.interval(0.95, loc=d.mean(),
scale=scipy.stats.sem(d))``.
"""

from __future__ import annotations

import json

import pytest
from cli_runs import run_cli

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
    code, out, _ = run_cli(
        capsys, "compare", "small", "large", "--storage", url, "--format", "json"
    )
    assert code == 0
    ((score,),) = [e["scores"] for e in json.loads(out)["evaluations"]]
    assert (score["regressed"], score["improved"]) == (0, 2)
    # d = [0, 1, 0, 0, 1, 0, 0, 0]: scipy norm.interval(0.95, 0.25, sem(d)=0.16366...)
    difference = score["metrics"][0]["difference"]
    assert (difference["value"], difference["low"], difference["high"]) == pytest.approx(
        (0.25, -0.07077440423364478, 0.5707744042336448)
    )
