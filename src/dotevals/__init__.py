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

from dotevals.foreach import ForEach, foreach
from dotevals.models import EvaluationSummary, Record, Result, Score

if TYPE_CHECKING:
    from dotevals.export import load
    from dotevals.providers import ModelHandle, ModelProvider
    from dotevals.runners import Runner, arun, run

__all__ = [
    "EvaluationSummary",
    "ForEach",
    "ModelHandle",
    "ModelProvider",
    "Record",
    "Result",
    "Runner",
    "Score",
    "arun",
    "foreach",
    "load",
    "run",
]
__version__ = "0.1.0"

# The Runner, load and the providers are imported on first use, so that worker
# processes and the command line do not pay for the pytest machinery they never touch.
_HOMES = {
    "load": "dotevals.export",
    "ModelHandle": "dotevals.providers",
    "ModelProvider": "dotevals.providers",
    "Runner": "dotevals.runners",
    "arun": "dotevals.runners",
    "run": "dotevals.runners",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'dotevals' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
