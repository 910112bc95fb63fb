"""The public surface, in other processes: what ``import dotevals`` leaves unimported,
and what a type checker sees."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


def test_importing_dotevals_leaves_pytest_and_the_runner_unimported():
    code = (
        "import sys, dotevals\n"
        "print(sorted(m for m in ('pytest', 'dotevals.runners', 'dotevals.evaluators') "
        "if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


USER_FILE = """\
from dotevals import Score, foreach


@foreach("question,answer", [("1+1", "2")])
def eval_math(question: str, answer: str, model: object) -> Score:
    return Score("exact", question == answer)


summary = eval_math(model=object())
reveal_type(summary)
metrics: dict[str, dict[str, float]] = summary.metrics
wrong = eval_math("1+1")  # the columns come from the dataset, not from the caller
"""


@pytest.mark.skipif(
    importlib.util.find_spec("mypy") is None, reason="mypy is not installed (pip install mypy)"
)
def test_a_decorated_evaluation_type_checks_as_a_call_that_returns_its_summary(tmp_path: Path):
    (tmp_path / "user_eval.py").write_text(textwrap.dedent(USER_FILE))
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--cache-dir", str(tmp_path / "cache")]
        + ["--no-error-summary", "user_eval.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.stdout.splitlines() == [
        'user_eval.py:10: note: Revealed type is "dotevals.models.EvaluationSummary"',
        'user_eval.py:12: error: Too many arguments for "__call__" of "EvaluationFunction"  '
        "[call-arg]",
    ], done.stdout + done.stderr
