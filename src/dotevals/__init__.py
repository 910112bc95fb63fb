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

from dotevals.foreach import ForEach, foreach
from dotevals.models import EvaluationSummary, Record, Result, Score
from dotevals.runners import Runner, arun, run

__all__ = [
    "EvaluationSummary",
    "ForEach",
    "Record",
    "Result",
    "Runner",
    "Score",
    "arun",
    "foreach",
    "run",
]
__version__ = "0.1.0"
