"""The ``dotevals`` command as a program (``python -m dotevals.cli``), on storage filled
through the storage API."""

from __future__ import annotations

import json
import subprocess
import sys


def dotevals_command(cwd, *argv: str) -> subprocess.CompletedProcess:
    """`python -m dotevals.cli ARGV` run in ``cwd``."""
    return subprocess.run(
        [sys.executable, "-m", "dotevals.cli", *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
    )


def test_subprocess(listing_url, tmp_path):
    def dotevals(*argv: str) -> subprocess.CompletedProcess:
        return dotevals_command(tmp_path, *argv)

    listed = dotevals("list", "--storage", listing_url)
    assert listed.returncode == 0, listed.stderr
    assert "gsm8k-baseline" in listed.stdout and "Ephemeral experiments" in listed.stdout

    shown = dotevals("show", "gsm8k-baseline", "--storage", listing_url, "--format", "json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["evaluations"][0]["rows"] == 4

    (tmp_path / ".dotevals").mkdir()
    missing = dotevals("show", "nope")  # the default storage, json://.dotevals in cwd
    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr == (
        "error: experiment 'nope' not found in json://.dotevals (see 'dotevals list')\n"
    )

    datasets = dotevals("datasets", "-v")
    assert datasets.returncode == 0 and "arithmetic" in datasets.stdout


# One results folder: pytest, the command and a script agree ---------------------------

EVAL_MATH = """
from dotevals import Score, foreach


@foreach("q", range(4))
def eval_math(q):
    return Score("ok", q % 2 == 0)
"""

#: A script that collects the project's evaluations as pytest would and runs them.
COLLECT_AND_RUN = """
from dotevals.collect import evaluation_items
from dotevals.runners import Runner

with evaluation_items(["evals/", "-qq", "-p", "no:cacheprovider"]) as items:
    runner = Runner(experiment_name="baseline", progress=False)
    runner.run(items)
(outcome,) = runner.outcomes
print(runner.store.storage.url, outcome.stored_name, outcome.new_rows, outcome.summary.rows)
"""


def test_pytest_then_the_command_and_a_script_find_the_same_results(pytester):
    """A project without a pytest configuration file: ``pytest evals/`` stores where
    ``dotevals show`` and a script collecting ``evals/`` with a Runner read."""
    from pytest_runs import run_pytest

    (pytester.mkdir("evals") / "eval_math.py").write_text(EVAL_MATH)
    run_pytest(pytester, "evals", "--experiment", "baseline").assert_outcomes(passed=1)
    assert (pytester.path / ".dotevals").is_dir()
    assert not (pytester.path / "evals" / ".dotevals").exists()

    shown = dotevals_command(pytester.path, "show", "baseline")
    assert shown.returncode == 0, shown.stderr
    assert "evals/eval_math.py::eval_math  completed" in shown.stdout
    assert shown.stdout.startswith("Experiment 'baseline' in json://.dotevals ")

    script = pytester.path / "run_evals.py"
    script.write_text(COLLECT_AND_RUN)
    ran = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        cwd=pytester.path,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    # the script resumed the experiment pytest stored: same storage, same name, nothing new
    assert ran.stdout.splitlines()[-1].split() == [
        f"json://{pytester.path / '.dotevals'}",
        "evals/eval_math.py::eval_math",
        "0",
        "4",
    ]


def test_the_command_reads_the_storage_of_pyproject(pytester):
    from pytest_runs import run_pytest

    pytester.makepyprojecttoml(
        '[tool.pytest.ini_options]\ndotevals_storage = "sqlite://results/evals.db"\n'
    )
    (pytester.mkdir("evals") / "eval_math.py").write_text(EVAL_MATH)
    run_pytest(pytester, "evals", "--experiment", "baseline").assert_outcomes(passed=1)
    assert (pytester.path / "results" / "evals.db").is_file()
    for cwd in (pytester.path, pytester.path / "evals"):
        listed = dotevals_command(cwd, "list")
        assert listed.returncode == 0, listed.stderr
        assert "baseline" in listed.stdout
    assert listed.stdout.startswith(f"Experiments in sqlite://{pytester.path}/results/evals.db")
