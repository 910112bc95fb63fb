"""The 95 % intervals of a real pytest run: in its summary, in ``dotevals show`` and in
its JSON.

Reference numbers were computed once with statsmodels 0.15 and scipy 1.17:
``statsmodels.stats.proportion.proportion_confint(k, n, method="wilson")`` for
proportions, ``scipy.stats.norm.interval(0.95, loc=mean, scale=scipy.stats.sem(x))``
for means."""

from __future__ import annotations

import json
import math

import pytest

from dotevals.cli import main

EVAL = """
from dotevals import Result, Score, foreach
from dotevals.metrics import accuracy, mean


@foreach("i", range(10))
def eval_parity(i):
    if i == 9:
        raise ValueError("row nine")
    return Result(Score("even", i % 2 == 0, [accuracy()]), Score("size", i / 10, [mean()]))
"""


@pytest.mark.parametrize("kind", ["json", "sqlite"])
def test_summary_and_show_print_the_interval(pytester, capsys, kind):
    """A real run: the summary line and `dotevals show` give value and interval; the
    JSON gives value, stderr and both bounds, as stored with the evaluation."""
    pytester.makepyfile(eval_parity=EVAL)
    url = f"{kind}://{pytester.path / 'store'}"
    result = pytester.runpytest("-p", "no:cacheprovider", "--storage", url, "--experiment", "e")
    result.assert_outcomes(passed=1)
    # 5 even of 10 rows (row 9 errored: counts False) -> statsmodels wilson(5, 10)
    low, high = 0.23659309051256394, 0.7634069094874361
    line = next(line for line in result.outlines if " accuracy " in line)
    assert line.split()[-4:] == ["accuracy", "0.5000", f"[{low:.4f},", f"{high:.4f}]"]
    # sizes 0.0 .. 0.8 and the errored row's 0: scipy norm.interval with sem -> 0.36 [...]
    mean_line = next(line for line in result.outlines if " mean " in line)
    assert mean_line.split()[-4:] == ["mean", "0.3600", "[0.1818,", "0.5382]"]

    capsys.readouterr()
    assert main(["show", "e", "--storage", url]) == 0
    shown = next(line for line in capsys.readouterr().out.splitlines() if " accuracy " in line)
    assert shown.split()[1:] == ["even", "accuracy", "0.5000"] + line.split()[-2:]

    assert main(["show", "e", "--storage", url, "--format", "json"]) == 0
    (evaluation,) = json.loads(capsys.readouterr().out)["evaluations"]
    assert evaluation["intervals"]["even"]["accuracy"] == {
        "value": 0.5,
        "stderr": pytest.approx(math.sqrt(0.25 / 10)),
        "low": pytest.approx(low),
        "high": pytest.approx(high),
        "method": "wilson",
    }
