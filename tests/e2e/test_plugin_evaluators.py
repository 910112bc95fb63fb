"""Evaluator and metric plugins in other processes: importing dotevals loads no entry
point, and a real pytest session and ``dotevals show`` use them.

Plugins are real distributions written by ``plugin_dists.install`` into a directory
on ``PYTHONPATH``, where ``importlib.metadata`` finds them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from plugin_dists import BROKEN_ENTRY_POINTS, install
from pytest_runs import FAST


def run_python(code: str, pythonpath: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_importing_the_modules_loads_no_entry_point(tmp_path):
    package = install(tmp_path)
    install(tmp_path, BROKEN_ENTRY_POINTS)  # a warning would be an error (-W error)
    done = run_python(
        f"""
        import sys
        from dotevals.evaluators import evaluator, exact_match, registry
        from dotevals.metrics import accuracy, metric, get_metric
        assert exact_match("a", "a", name="n").name == "n"
        assert get_metric("accuracy") == accuracy()
        assert not [m for m in sys.modules if m.startswith("{package}")], "plugin imported"
        from dotevals.evaluators import fuzzy_match
        assert "{package}.evaluators" in sys.modules
        assert "{package}.metrics" not in sys.modules
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr


# --- end to end -----------------------------------------------------------------------------

EVAL_WITH_PLUGINS = """
from dotevals import foreach
from dotevals.evaluators import fuzzy_match
from dotevals.metrics import harmonic_mean
from dotevals.models import Result, Score

WORDS = [("colour", "color"), ("grey", "gray"), ("cat", "dog"), ("theatre", "theater")]


@foreach("text,expected", WORDS)
def eval_spelling(text, expected):
    return Result(
        fuzzy_match(text, expected, name="close"),
        Score("length", len(text), [harmonic_mean()]),
    )
"""


def test_plugin_evaluator_and_metric_in_a_run_and_in_show(pytester, tmp_path, monkeypatch):
    plugins = tmp_path / "site"
    install(plugins)
    monkeypatch.setenv("PYTHONPATH", str(plugins))
    pytester.makepyfile(eval_spelling=EVAL_WITH_PLUGINS)
    url = f"json://{pytester.path / 'store'}"

    result = pytester.runpytest_subprocess(
        *FAST, "--storage", url, "--experiment", "words", timeout=120
    )
    result.assert_outcomes(passed=1)

    shown = subprocess.run(
        [sys.executable, "-m", "dotevals.cli", "show", "words", "--storage", url]
        + ["--full", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=pytester.path,
    )
    assert shown.returncode == 0, shown.stderr
    (evaluation,) = json.loads(shown.stdout)["evaluations"]
    harmonic = 4 / (1 / 6 + 1 / 4 + 1 / 3 + 1 / 7)
    assert evaluation["metrics"]["close"] == {"accuracy": 0.5}  # grey/gray: ratio 0.75
    assert evaluation["metrics"]["length"]["harmonic_mean"] == pytest.approx(harmonic)
    for record in evaluation["records"]:
        scores = {s["name"]: s for s in record["result"]["scores"]}
        assert scores["close"]["metrics"] == ["accuracy"]
        assert scores["length"]["metrics"] == ["harmonic_mean"]  # resolved when read back
