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


NOT_FINITE = """
from dotevals import Score, foreach
from dotevals.metrics import mean

VALUES = {"nan": float("nan"), "inf": float("inf"), "huge": 10**400, "text": "abc"}


@foreach("kind", list(VALUES))
def eval_odd(kind):
    return Score("s", VALUES[kind], [mean()])


@foreach("kind", ["nan", "inf", "huge"])
def eval_one(kind):
    return Score("s", 1 if kind != "huge" else VALUES[kind], [mean()])
"""


def test_scores_that_are_not_finite_numbers_end_in_a_table(pytester, capsys, tmp_path):
    """NaN, an infinity and an integer beyond floats give a NaN or infinite mean, shown
    as such; text under mean() fails its evaluation with one line, and the summary, the
    statuses, `dotevals show` and `dotevals report` all work."""
    pytester.makepyfile(eval_odd=NOT_FINITE)
    url = f"json://{pytester.path / 'store'}"
    result = pytester.runpytest("-p", "no:cacheprovider", "--storage", url, "--experiment", "e")
    result.assert_outcomes(passed=1, failed=1)
    assert "Traceback" not in result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*eval_odd: score 's', metric mean: its value 'abc' is str, not a number: *",
            "*dotevals summary*",
            "*eval_one*mean*inf*",
        ]
    )
    capsys.readouterr()
    assert main(["show", "e", "--storage", url, "--format", "json"]) == 0
    shown = {
        e["name"].split("::")[-1]: e for e in json.loads(capsys.readouterr().out)["evaluations"]
    }
    assert shown["eval_odd"]["status"] == "failed"
    assert shown["eval_odd"]["metrics"] == {"s": {}}
    assert shown["eval_odd"]["metric_errors"] == [
        "score 's', metric mean: its value 'abc' is str, not a number: return numbers "
        "for mean(), or true/false values under accuracy()"
    ]
    assert shown["eval_one"]["status"] == "completed"
    assert shown["eval_one"]["metrics"] == {"s": {"mean": math.inf}}
    assert main(["show", "e", "--storage", url]) == 0
    assert "eval_odd: score 's', metric mean: its value 'abc'" in capsys.readouterr().out
    page = tmp_path / "report.html"
    assert main(["report", "e", "--storage", url, "-o", str(page)]) == 0
    assert ">inf<" in page.read_text()
