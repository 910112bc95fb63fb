"""A complete evaluation: a toy "model" answers the built-in arithmetic questions.

Run it with ``make demo``, or ``pytest examples/eval_arithmetic.py --experiment demo``.
"""

import re

import pytest

from dotevals import Result, foreach
from dotevals.evaluators import exact_match, numeric_match


class ToyModel:
    """Stands in for a language model: right on sums, sloppy on products."""

    def answer(self, question: str) -> str:
        a, op, b = re.match(r"What is (-?\d+) ([-+*]) (-?\d+)\?", question).groups()
        a, b = int(a), int(b)
        if op == "+":
            return f"{a + b}"
        if op == "-":
            return f" {a - b} "
        return f"{a * b + (1 if (a + b) % 4 == 0 else 0):,}"


@pytest.fixture(scope="session")
def model() -> ToyModel:
    return ToyModel()


@foreach.arithmetic("test")
def eval_arithmetic(question, answer, model):
    response = model.answer(question)
    return Result(
        exact_match(response, answer),
        numeric_match(response, answer),
        prompt=question,
        model_response=response,
    )
