"""``arithmetic``: small integer sums, differences and products, built in."""

from __future__ import annotations

from collections.abc import Iterator

from dotevals.datasets.base import Dataset

__all__ = ["Arithmetic"]

ROWS_PER_SPLIT = 40


def _operands(k: int, op: str) -> tuple[int, int]:
    """The operands of question ``k``, from fixed formulas (no randomness)."""
    if op == "*":
        return 2 + (k * 7) % 18, 2 + (k * 5 + 3) % 11
    a, b = 10 + (k * 37) % 90, 10 + (k * 61 + 13) % 90
    return (max(a, b), min(a, b)) if op == "-" else (a, b)


def _rows(split_index: int) -> Iterator[tuple[str, str]]:
    for i in range(ROWS_PER_SPLIT):
        op = "+-*"[i % 3]
        a, b = _operands(split_index * ROWS_PER_SPLIT + i, op)
        answer = a + b if op == "+" else a - b if op == "-" else a * b
        yield f"What is {a} {op} {b}?", str(answer)


class Arithmetic(Dataset):
    """Integer arithmetic questions such as ("What is 17 + 25?", "42").

    Each split has 40 rows mixing ``+``, ``-`` and ``*``; the answer is the
    result written as a string. The rows are the same in every run and
    process, and the two splits share no question.
    """

    name = "arithmetic"
    columns = ["question", "answer"]
    splits = ["train", "test"]
    num_rows = ROWS_PER_SPLIT  # the same for both splits

    def __iter__(self) -> Iterator[tuple[str, str]]:
        assert self.split is not None  # the base class requires one of ``splits``
        return _rows(self.splits.index(self.split))
