"""Repeats and budgets in real runs: a pytest session killed in the middle of a row's
epochs resumes with every (row, epoch) stored once, in the main process and across
worker processes; a budget reached under pytest skips the item, and a larger one resumes."""

from __future__ import annotations

import os
import signal
import sys
from collections import Counter
from pathlib import Path

import pytest
from pool_support import rows_held, spawned, wait_until
from stores import KINDS, opened, storage_url

ROWS, EPOCHS = 40, 5

EVAL = f"""
import os, time
from pathlib import Path
from dotevals import Score, foreach
from dotevals.llm import current_row
from dotevals.metrics import accuracy

GATE = Path(os.environ["GATE"])


@foreach("i", range({ROWS}), epochs={EPOCHS}, reducers=["mean", "pass_at_2"])
def eval_repeats(i):
    row = current_row()
    if (i, row.epoch) == (int(os.environ["HOLD_AT"]), 2):
        while not GATE.exists():  # holds the run here, in the middle of this row's epochs
            time.sleep(0.05)
    return Score("ok", (i + row.epoch) % 3 != 0, [accuracy()])
"""


def command(url: str, workers: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pytest",
        "eval_repeats.py",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        "--no-progress",
        "--storage",
        url,
        "--experiment",
        "killed",
        *(["--workers", str(workers)] if workers else []),
    ]


def raw_samples(url: str) -> Counter:
    """How many records each (item_id, epoch) has in storage, every record counted."""
    with opened(url) as storage:
        return Counter(
            (r.item_id, r.epoch)
            for r in storage.iter_records("killed", "eval_repeats.py::eval_repeats")
        )


@pytest.mark.parametrize("workers", [0, 2], ids=["main-process", "workers=2"])
@pytest.mark.parametrize("kind", KINDS)
def test_a_run_killed_in_the_middle_of_the_epochs_resumes_storing_each_sample_once(
    tmp_path: Path, kind: str, workers: int
):
    (tmp_path / "eval_repeats.py").write_text(EVAL)
    url = storage_url(kind, tmp_path)
    gate = tmp_path / "gate"
    env = {**os.environ, "GATE": str(gate), "HOLD_AT": "25"}
    with spawned(command(url, workers), tmp_path, env=env) as proc:
        wait_until(lambda: rows_held(url) >= 8, 120, "8 stored samples", proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    before = raw_samples(url)
    assert 0 < sum(before.values()) < ROWS * EPOCHS
    gate.touch()
    with spawned(command(url, workers), tmp_path, env=env) as proc:
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, out.decode() + err.decode()
    after = raw_samples(url)
    assert sorted(after) == [(i, e) for i in range(ROWS) for e in range(EPOCHS)]
    assert set(after.values()) == {1}, "a (row, epoch) was stored twice"
    with opened(url) as storage:
        info = storage.evaluation_info("killed", "eval_repeats.py::eval_repeats")
    assert info.status == "completed" and info.metadata["epochs"] == EPOCHS
    assert set(info.reduced) == {"mean", "pass_at(2)"}
    assert "epochs" in out.decode() and "pass_at(2)" in out.decode()


BUDGET_EVAL = """
from dotevals import Score, foreach
from dotevals.llm import Usage, add_usage, set_price

set_price("paid", input=1_000_000.0, output=0.0)  # one dollar per input token


@foreach("i", range(6))
def eval_paid(i):
    add_usage("paid", Usage(input_tokens=1))
    return Score("ok", True)


@foreach("i", range(3))
def eval_after(i):
    add_usage("paid", Usage(input_tokens=1))
    return Score("ok", True)
"""


def test_a_budget_reached_under_pytest_skips_the_items_and_a_larger_one_resumes(
    pytester: pytest.Pytester,
):
    pytester.makepyfile(eval_budget=BUDGET_EVAL)
    args = ["-p", "no:cacheprovider", "--no-progress", "--experiment", "b", "-rs"]
    first = pytester.runpytest_subprocess(*args, "--max-cost", "4")
    assert first.ret == pytest.ExitCode.OK
    first.assert_outcomes(skipped=2)
    out = first.stdout.str()
    assert out.count("the budget is spent, no new row starts") == 1
    first.stdout.fnmatch_lines(
        ["*SKIPPED*eval_budget.py*stopped at the budget: --max-cost 4 USD reached*"]
    )
    assert "total cost: $" in out
    second = pytester.runpytest_subprocess(*args, "--max-cost", "100")
    assert second.ret == pytest.ExitCode.OK
    second.assert_outcomes(passed=2)
    third = pytester.runpytest_subprocess(*args, "--max-cost", "100", "--max-tokens", "100")
    third.assert_outcomes(passed=2)
    with opened(f"json://{pytester.path / '.dotevals'}") as storage:
        paid = storage.load_records("b", "eval_budget.py::eval_paid")
        after = storage.load_records("b", "eval_budget.py::eval_after")
    assert (len(paid), len(after)) == (6, 3)
    assert sum(sum(r.cost.values()) for r in paid + after) == pytest.approx(9.0)
