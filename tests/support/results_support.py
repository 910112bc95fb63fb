"""Two small experiments written by real runs, for the tests of reading results back."""

from __future__ import annotations

import dotevals
from dotevals import Result, Score, foreach
from dotevals.evaluators import exact_match
from dotevals.metrics import mean

QUESTIONS = [
    ("What is 1 + 1?", "2"),
    ("What is 2 + 2?", "4"),
    ("What is <script>alert(3)</script> + 3?", "6"),
    ("What is 4 + 4?", "8"),
    ("What is 5 + 5?", "10"),
]
#: Rows of eval_sums whose outcome differs between experiments "a" and "b".
CHANGED = {1, 2, 4}


class Model:
    """Answers each question right, except the rows it gets ``wrong`` and those it ``raises`` on."""

    def __init__(self, wrong: set[int], raises: dict[int, type[Exception]]):
        self.wrong = wrong
        self.raises = raises

    def __call__(self, question: str) -> str:
        row = [q for q, _ in QUESTIONS].index(question)
        if row in self.raises:
            raise self.raises[row](f"no answer to row {row}")
        answer = QUESTIONS[row][1]
        return answer + "0" if row in self.wrong else answer


@foreach("question,answer", QUESTIONS)
def eval_sums(question, answer, model):
    response = model(question)
    return Result(exact_match(response, answer), prompt=question, model_response=response)


@foreach("text,error", [("abc", "x"), ("de", "y"), ("", "z")])
def eval_lengths(text, error):
    """A dataset column named ``error`` and a score named like a column, ``text``."""
    return Result(Score("length", len(text), [mean()]), Score("text", text.upper()))


def write_experiments(url: str) -> None:
    """Experiment "a": ``eval_sums`` (row 1 wrong, row 3 raises ValueError; row 0
    raised on a first run and is right on the resumed one), then ``eval_lengths``.
    Experiment "b": ``eval_sums`` only (row 2 wrong, row 3 raises ValueError and
    row 4 ZeroDivisionError)."""

    def run(evaluation, experiment: str, **fixtures) -> None:
        dotevals.run(evaluation, experiment=experiment, storage=url, progress=False, **fixtures)

    run(eval_sums, "a", model=Model({1}, {0: RuntimeError, 3: ValueError}))
    run(eval_sums, "a", model=Model({1}, {3: ValueError}))
    run(eval_lengths, "a")
    run(eval_sums, "b", model=Model({2}, {3: ValueError, 4: ZeroDivisionError}))
