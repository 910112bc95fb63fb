"""The public surface: what ``import dotevals`` offers."""

from __future__ import annotations

import importlib.metadata
import importlib.util

import pytest

import dotevals


def test_the_top_level_offers_what_users_reach_for_and_not_storage_internals():
    for name in dotevals.__all__:
        assert getattr(dotevals, name) is not None, name
    from dotevals.concurrency import Adaptive
    from dotevals.errors import RowTimeoutError
    from dotevals.evaluators import evaluator
    from dotevals.runners import EvaluationOutcome, RunReporter

    assert dotevals.Adaptive is Adaptive and dotevals.RowTimeoutError is RowTimeoutError
    assert dotevals.evaluator is evaluator and dotevals.RunReporter is RunReporter
    assert dotevals.EvaluationOutcome is EvaluationOutcome
    assert "Record" not in dotevals.__all__
    with pytest.raises(AttributeError):
        dotevals.Record  # noqa: B018
    assert dotevals.__version__ == importlib.metadata.version("dotevals")
