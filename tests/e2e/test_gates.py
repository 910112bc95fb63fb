"""Score gates: --fail-under, dotevals_fail_under and @foreach(..., fail_under=...),
through real pytest sessions on real storage."""

from __future__ import annotations

import pytest
from pytest_output import section_of
from stores import storage_url

from dotevals._declare.gates import Gate, parse_gate
from dotevals.errors import ConfigurationError

FAST = ("-p", "no:hypothesispytest", "-p", "no:cacheprovider")

# 4 rows, 3 correct: accuracy 0.75, Wilson [0.3006, 0.9544]
# (statsmodels proportion_confint(3, 4, method="wilson"))
EVAL = """
from dotevals import Result, Score, foreach
from dotevals.metrics import accuracy, mean

ROWS = [("1+1", "2"), ("2+2", "4"), ("3+3", "6"), ("4+4", "9")]


@foreach("question,answer", ROWS{fail_under})
def eval_math(question, answer):
    right = str(eval(question)) == answer
    return Result(Score("em", right, [accuracy()]), Score("length", len(question), [mean()]))
"""


def write_eval(pytester: pytest.Pytester, fail_under: str = "") -> None:
    pytester.makepyfile(eval_math=EVAL.format(fail_under=fail_under and f", {fail_under}"))


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    url = storage_url("json", pytester.path)
    return pytester.runpytest(*FAST, "--storage", url, "--experiment", "gated", *args)


def gate_column(result: pytest.RunResult, metric: str) -> str:
    line = next(line for line in result.outlines if f" {metric} " in line)
    return line.split("]", 1)[1].strip()


def test_a_gate_below_the_score_passes(pytester):
    write_eval(pytester)
    result = run(pytester, "--fail-under", "em=0.7")
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    assert gate_column(result, "accuracy") == ">= 0.7 passed"
    assert gate_column(result, "mean") == ""  # not gated


def test_a_gate_above_the_score_fails_the_item(pytester):
    write_eval(pytester)
    result = run(pytester, "--fail-under", "em:accuracy=0.8")
    result.assert_outcomes(failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    message = section_of(result, "eval_math").strip()
    assert message == (
        "eval_math: em:accuracy = 0.7500 [0.3006, 0.9544], below the threshold 0.8 "
        "(over 4 stored rows)"
    )
    assert gate_column(result, "accuracy") == ">= 0.8 FAILED"


def test_the_gate_counts_resumed_rows(pytester):
    """Two rows run, then the other two on resume: the gate sees all four."""
    write_eval(pytester)
    first = run(pytester, "--samples", "2", "--fail-under", "em=1")
    first.assert_outcomes(passed=1)  # rows 0 and 1 are right
    resumed = run(pytester, "--fail-under", "em=1")
    resumed.assert_outcomes(failed=1)
    assert "em:accuracy = 0.7500 [0.3006, 0.9544], below the threshold 1 (over 4 stored rows)" in (
        section_of(resumed, "eval_math")
    )


def test_a_gate_in_the_eval_file(pytester):
    write_eval(pytester, 'fail_under={"em": 0.9, "length:mean": 3}')
    result = run(pytester)
    result.assert_outcomes(failed=1)
    assert "em:accuracy = 0.7500 [0.3006, 0.9544], below the threshold 0.9" in (
        section_of(result, "eval_math")
    )
    assert gate_column(result, "mean") == ">= 3 passed"
    # the command line does not loosen the file's own gate for the same key
    run(pytester, "--fail-under", "em=0.5").assert_outcomes(failed=1)


def test_the_ini_gives_default_gates(pytester):
    write_eval(pytester)
    pytester.makeini("[pytest]\ndotevals_fail_under = em=0.8 length:mean=1\n")
    run(pytester).assert_outcomes(failed=1)
    run(pytester, "--fail-under", "em=0.5").assert_outcomes(passed=1)  # the option wins


def test_an_unknown_metric_fails_the_item_with_a_clear_message(pytester):
    write_eval(pytester)
    result = run(pytester, "--fail-under", "em:mean=0.5")
    result.assert_outcomes(failed=1)
    assert section_of(result, "eval_math").strip() == (
        "eval_math: the gate em:mean=0.5 names the metric 'mean', which 'em' does not have "
        "(its metrics: 'accuracy')"
    )


def test_an_unknown_score_in_the_eval_file_fails_the_item(pytester):
    write_eval(pytester, 'fail_under={"exact": 0.5}')
    result = run(pytester)
    result.assert_outcomes(failed=1)
    assert section_of(result, "eval_math").strip() == (
        "eval_math: fail_under names the score 'exact', which the evaluation does not have "
        "(its scores: 'em', 'length')"
    )


NOT_A_NUMBER = """
from dotevals import Score, foreach
from dotevals.metrics import metric


@metric
def verdict():
    def compute(values):
        return {value}

    return compute


@foreach("q", [1, 2]{fail_under})
def eval_verdict(q):
    return Score("em", q == 1, [verdict()])
"""


@pytest.mark.parametrize(("value", "shown"), [('"good"', "'good'"), ("None", "None")])
@pytest.mark.parametrize("where", ["command line", "eval file"])
def test_a_gate_on_a_metric_that_is_not_a_number_fails_the_item_in_one_line(
    pytester, value, shown, where
):
    """A custom metric returning text or None: the item fails with one line, the summary
    still shows the value, and pytest has no internal error."""
    own = where == "eval file"
    fail_under = ', fail_under={"em": 1}' if own else ""
    pytester.makepyfile(eval_verdict=NOT_A_NUMBER.format(value=value, fail_under=fail_under))
    result = run(pytester, *(() if own else ("--fail-under", "em=1")))
    result.assert_outcomes(failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert section_of(result, "eval_verdict").strip() == (
        f"eval_verdict: the gate em=1 cannot be checked: the metric 'verdict' of 'em' gave "
        f"{shown}, not a number; make it return a number or gate another metric"
    )
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_a_command_line_score_no_evaluation_has_is_a_usage_error(pytester):
    write_eval(pytester)
    result = run(pytester, "--fail-under", "exact=0.5")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(
        [
            "error: --fail-under exact: no evaluation of this run has that score "
            "(their scores: em, length); check the name"
        ]
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("em", "write SCORE=VALUE or SCORE:METRIC=VALUE"),
        ("em=high", "the threshold must be a number, got 'high'"),
        ("=0.5", "does not name a score"),
        ("em:=0.5", "does not name a score"),
    ],
)
def test_a_malformed_gate_stops_the_session(pytester, text, problem):
    write_eval(pytester)
    result = run(pytester, "--fail-under", text)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert problem in result.stderr.str()
    assert not (pytester.path / "store").exists()  # nothing ran


def test_parse_gate():
    assert parse_gate("em=0.8") == Gate("em", None, 0.8)
    assert parse_gate(" em : accuracy = 1 ") == Gate("em", "accuracy", 1.0)
    with pytest.raises(ConfigurationError, match="threshold must be a number"):
        parse_gate("em=nan")


def test_fail_under_must_be_a_dict(pytester):
    write_eval(pytester, "fail_under=0.8")
    result = run(pytester)
    assert result.ret == pytest.ExitCode.INTERRUPTED  # a collection error
    result.stdout.fnmatch_lines(
        ["*eval_math: fail_under must be a dict such as {'exact_match': 0.8}, got float*"]
    )


def test_a_percentage_for_a_share_is_refused_and_a_percent_sign_is_taken(pytester):
    write_eval(pytester)
    result = run(pytester, "--fail-under", "em=70")  # meant 70 %: accuracy is at most 1
    result.assert_outcomes(failed=1)
    assert section_of(result, "eval_math").strip() == (
        "eval_math: the gate em=70 can never pass, em:accuracy is a share between 0 and 1: "
        "write 0.7 (or 70%) for 70 %"
    )
    result = run(pytester, "--fail-under", "em=70%", "--fail-under", "length=70")
    result.assert_outcomes(passed=0, failed=1)  # 0.75 passes 70 %; a mean may be 70
    assert gate_column(result, "accuracy") == ">= 0.7 passed"
    assert gate_column(result, "mean") == ">= 70 FAILED"
    assert parse_gate("em=70%") == Gate("em", None, 0.7)
