"""dotevals: evaluations of language models as Python functions over datasets.

::

    from dotevals import foreach, Result, Score
    from dotevals.evaluators import exact_match

    @foreach("question,answer", [("1+1", "2"), ("2+2", "4")])
    def eval_math(question, answer, model):
        return exact_match(model(question), answer)

Run it with ``pytest eval_math.py`` (the ``dotevals`` plugin loads by itself)
or, outside pytest, with ``dotevals.run(eval_math, model=my_model)``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dotevals.concurrency import Adaptive, AsyncSequential, Batch, Sequential, SlidingWindow
from dotevals.errors import (
    ClusterLostError,
    ConfigurationError,
    DatasetError,
    DotevalsError,
    ExperimentInUseError,
    ExperimentNotFoundError,
    GateFailedError,
    RowsFailedError,
    RowTimeoutError,
    StorageError,
    TransferError,
    UnknownStorageError,
    WorkerDiedError,
)
from dotevals.foreach import ForEach, foreach
from dotevals.metrics import accuracy, mean, metric
from dotevals.models import EvaluationSummary, Result, Score

if TYPE_CHECKING:
    from dotevals.evaluators import evaluator
    from dotevals.export import load
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
    "RowTimeoutError",
    "WorkerDiedError",
    "TransferError",
    "ClusterLostError",
    "RowsFailedError",
    "GateFailedError",
]

# These are imported on first use, so that worker processes and the command line
# do not pay for what they never touch (the Runner brings in pytest).
_HOMES = {
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


def _version() -> str:
    """The installed distribution's version, as ``pip show dotevals`` gives it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dotevals")
    except PackageNotFoundError:
        return "unknown"
