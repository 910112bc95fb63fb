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


def test_the_version_comes_after_dotevals_0_23_so_that_requiring_it_keeps_this_package():
    """A project or plugin that asks for ``dotevals>=0.23`` keeps this package: the
    version of the installed distribution and of the source both come after 0.23."""
    from pathlib import Path

    from packaging.requirements import Requirement
    from packaging.version import Version

    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    pyproject = Path(__file__).parents[2] / "pyproject.toml"
    declared = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"]
    for version in (declared, dotevals.__version__):
        assert Version(version) > Version("0.23")
        assert Requirement("dotevals>=0.23").specifier.contains(version)
