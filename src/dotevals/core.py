"""The decorator and the result types under one roof, for ``from dotevals.core import ...``.

Everything here lives in its own module and is only re-exported:
:class:`~dotevals.foreach.ForEach` and ``foreach`` from :mod:`dotevals.foreach`,
the result types from :mod:`dotevals.models`.
"""

from dotevals.foreach import ForEach, foreach
from dotevals.models import EvaluationSummary, Record, Result, Score

__all__ = ["EvaluationSummary", "ForEach", "Record", "Result", "Score", "foreach"]
