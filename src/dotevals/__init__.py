"""dotevals: evaluations of language models as Python functions over datasets.

::

    from dotevals import foreach, Result, Score
    from dotevals.evaluators import exact_match

    @foreach("question,answer", [("1+1", "2"), ("2+2", "4")])
    def eval_math(question, answer, model):
        return exact_match(model(question), answer)

Run it with ``pytest eval_math.py`` (the ``dotevals`` plugin loads by itself)
or, outside pytest, with ``dotevals.run(eval_math, model=my_model)``.

Every name here is imported on first use: pytest imports this package in every
session (for the plugin), and worker processes and the command line import
only what they touch.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dotevals.concurrency import Adaptive, AsyncSequential, Batch, Sequential, SlidingWindow
    from dotevals.errors import (
        ClusterLostError,
        ConfigurationError,
        DatasetError,
        DotevalsError,
        ExperimentInUseError,
        ExperimentNotFoundError,
        GateFailedError,
        RowExitError,
        RowsFailedError,
        RowTimeoutError,
        StorageError,
        TransferError,
        UnknownStorageError,
        WorkerDiedError,
    )
    from dotevals.evaluators import evaluator
    from dotevals.export import load
    from dotevals.foreach import ForEach, foreach
    from dotevals.metrics import accuracy, mean, metric
    from dotevals.models import EvaluationSummary, Result, Score
    from dotevals.providers import ModelHandle, ModelProvider
    from dotevals.runners import EvaluationOutcome, Runner, RunReporter, arun, run

    __version__: str

__all__ = [
    # declaring evaluations
    "foreach",
    "ForEach",
    "Score",
    "Result",
    "evaluator",
    "metric",
    "accuracy",
    "mean",
    "Sequential",
    "Batch",
    "SlidingWindow",
    "AsyncSequential",
    "Adaptive",
    # running them
    "run",
    "arun",
    "Runner",
    "RunReporter",
    "EvaluationOutcome",
    "EvaluationSummary",
    "load",
    "ModelProvider",
    "ModelHandle",
    # what can go wrong
    "DotevalsError",
    "ConfigurationError",
    "DatasetError",
    "StorageError",
    "UnknownStorageError",
    "ExperimentNotFoundError",
    "ExperimentInUseError",
    "RowExitError",
    "RowTimeoutError",
    "WorkerDiedError",
    "TransferError",
    "ClusterLostError",
    "RowsFailedError",
    "GateFailedError",
]

#: Where each name lives, imported on first use.
_HOMES = {
    "Adaptive": "dotevals.concurrency",
    "AsyncSequential": "dotevals.concurrency",
    "Batch": "dotevals.concurrency",
    "Sequential": "dotevals.concurrency",
    "SlidingWindow": "dotevals.concurrency",
    "ForEach": "dotevals.foreach",
    "foreach": "dotevals.foreach",
    "accuracy": "dotevals.metrics",
    "mean": "dotevals.metrics",
    "metric": "dotevals.metrics",
    "EvaluationSummary": "dotevals.models",
    "Result": "dotevals.models",
    "Score": "dotevals.models",
    "ClusterLostError": "dotevals.errors",
    "ConfigurationError": "dotevals.errors",
    "DatasetError": "dotevals.errors",
    "DotevalsError": "dotevals.errors",
    "ExperimentInUseError": "dotevals.errors",
    "ExperimentNotFoundError": "dotevals.errors",
    "GateFailedError": "dotevals.errors",
    "RowsFailedError": "dotevals.errors",
    "RowExitError": "dotevals.errors",
    "RowTimeoutError": "dotevals.errors",
    "StorageError": "dotevals.errors",
    "TransferError": "dotevals.errors",
    "UnknownStorageError": "dotevals.errors",
    "WorkerDiedError": "dotevals.errors",
    "evaluator": "dotevals.evaluators",
    "load": "dotevals.export",
    "ModelHandle": "dotevals.providers",
    "ModelProvider": "dotevals.providers",
    "EvaluationOutcome": "dotevals.runners",
    "RunReporter": "dotevals.runners",
    "Runner": "dotevals.runners",
    "arun": "dotevals.runners",
    "run": "dotevals.runners",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    if name == "__version__":
        return _version()
    raise AttributeError(f"module 'dotevals' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES, "__version__"])


class _Package(types.ModuleType):
    """The ``dotevals`` package: importing its module ``dotevals.foreach`` leaves the
    name ``dotevals.foreach`` to the decorator, as ``from dotevals import foreach`` wants."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _HOMES and isinstance(value, types.ModuleType):
            return  # the import system naming a submodule on its package
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def _version() -> str:
    """The installed distribution's version, as ``pip show dotevals`` gives it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dotevals")
    except PackageNotFoundError:
        return "unknown"
