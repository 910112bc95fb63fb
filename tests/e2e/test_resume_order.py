"""Resuming after the dataset's order changed, in real pytest sessions: stopped with one
line, or, with a key column, resumed row by row."""

from __future__ import annotations

import pytest
from pytest_runs import run_pytest
from stores import storage_url, stored_records

ORDER_EVAL = """
import os

from dotevals import Score, foreach
from dotevals.metrics import accuracy

ROWS = [(f"q{i}", i % 2 == 0) for i in range(10)]
if os.environ.get("REVERSED"):
    ROWS = ROWS[::-1]


@foreach("q,right", ROWS)
def eval_by_place(q, right):
    return Score("ok", right, [accuracy()])


@foreach("q,right", ROWS, key="q")
def eval_by_key(q, right):
    return Score("ok", right, [accuracy()])
"""


@pytest.mark.parametrize("workers", [None, "2"], ids=["main-process", "workers=2"])
def test_resume_after_the_order_changed(pytester, monkeypatch, workers):
    pytester.makepyfile(eval_order=ORDER_EVAL)
    url = storage_url("json", pytester.path)
    options = ["--storage", url, "--experiment", "e", *(["--workers", workers] if workers else [])]
    run_pytest(pytester, *options, "--samples", "5").assert_outcomes(passed=2)
    monkeypatch.setenv("REVERSED", "1")
    result = run_pytest(pytester, *options)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            '*eval_order.py::eval_by_place: row 0 of the dataset, {"q": "q9", "right": false}, '
            "is not the row stored at its place: the dataset's order or rows changed since, *"
        ]
    )
    by_place = stored_records(url, "e", "eval_order.py::eval_by_place")
    assert [r.dataset_row["q"] for r in by_place] == ["q0", "q1", "q2", "q3", "q4"]  # not mixed
    by_key = stored_records(url, "e", "eval_order.py::eval_by_key")
    assert sorted(r.dataset_row["q"] for r in by_key) == [f"q{i}" for i in range(10)]
    assert sum(r.result.scores[0].value for r in by_key) == 5  # accuracy 0.5, each row once
