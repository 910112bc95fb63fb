"""Stored results for the tests of reading them back: two small experiments written by
real runs (``write_experiments``), and a listing written through the storage API
(``write_listing``)."""

from __future__ import annotations

import dotevals
from dotevals import Result, Score, foreach
from dotevals.compare import EvaluationComparison, compare_evaluation
from dotevals.evaluators import exact_match
from dotevals.metrics import accuracy, mean
from dotevals.models import Record
from dotevals.storage import EvaluationInfo, get_storage

#: The columns of the tokens a sample used, in export, as ``Usage`` names them.
USAGE_COLUMNS = ["input_tokens", "output_tokens", "cached_input_tokens", "reasoning_tokens"]


def nothing_spent(samples: int) -> dict:
    """What ``show --format json`` says of samples stored without durations or usage:
    one epoch, no tokens, no cost, no latency."""
    return {
        "samples": samples,
        "epochs": 1,
        "usage": {},
        "tokens": 0,
        "cost": 0.0,
        "latency": None,
    }


QUESTIONS = [
    ("What is 1 + 1?", "2"),
    ("What is 2 + 2?", "4"),
    ("What is <script>alert(3)</script> + 3?", "6"),
    ("What is 4 + 4?", "8"),
    ("What is 5 + 5?", "10"),
]
#: Rows of eval_sums whose outcome differs between experiments "a" and "b".
CHANGED = {1, 2, 4}
#: The rows of each evaluation, as (evaluation, row).
SUMS = {("eval_sums", row) for row in range(5)}
LENGTHS = {("eval_lengths", row) for row in range(3)}


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


def write_experiments(url: str) -> str:
    """Experiment "a": ``eval_sums`` (row 1 wrong, row 3 raises ValueError; row 0
    raised on a first run and is right on the resumed one), then ``eval_lengths``.
    Experiment "b": ``eval_sums`` only (row 2 wrong, row 3 raises ValueError and
    row 4 ZeroDivisionError). Returns ``url``."""

    def run(evaluation, experiment: str, **fixtures) -> None:
        dotevals.run(evaluation, experiment=experiment, storage=url, progress=False, **fixtures)

    run(eval_sums, "a", model=Model({1}, {0: RuntimeError, 3: ValueError}))
    run(eval_sums, "a", model=Model({1}, {3: ValueError}))
    run(eval_lengths, "a")
    run(eval_sums, "b", model=Model({2}, {3: ValueError, 4: ZeroDivisionError}))
    return url


def sums_compared(url: str) -> EvaluationComparison:
    """eval_sums of experiment "b" compared with "a"."""
    a, b = (dotevals.load(e, storage=url, evaluation="eval_sums")["eval_sums"] for e in "ab")
    return compare_evaluation("eval_sums", a, b)


#: When the listed evaluations started.
STARTED = 1_700_000_000.0


def answer_record(item_id: int, correct: bool, error: str | None = None) -> Record:
    """Row ``item_id`` of a sums dataset, answered right or wrong, or errored."""
    score = Score("exact_match", correct, [accuracy()])
    row = {"question": f"What is {item_id} + 1?", "answer": str(item_id + 1)}
    if error:
        return Record(Result(), item_id, row, error=error)
    return Record(Result(score, prompt=row["question"]), item_id, row)


def write_listing(url: str) -> str:
    """Two named experiments and one ephemeral one; returns ``url``.

    ``gsm8k-baseline``: ``eval_math`` completed with a stored summary (4 rows,
    3 correct) and ``eval_flaky`` still running, without a summary (2 rows,
    1 correct, 1 errored). ``gsm8k-large``: no evaluations.
    """
    storage = get_storage(url)
    storage.create_experiment("gsm8k-baseline")
    storage.save_evaluation(
        "gsm8k-baseline",
        EvaluationInfo(
            "eval_math",
            status="completed",
            started_at=STARTED,
            ended_at=STARTED + 65,
            metadata={"model": "tiny"},
            metrics={"exact_match": {"accuracy": 0.75}},
        ),
    )
    storage.add_records("gsm8k-baseline", "eval_math", [answer_record(i, i != 2) for i in range(4)])
    storage.save_evaluation("gsm8k-baseline", EvaluationInfo("eval_flaky", started_at=STARTED))
    storage.add_records(
        "gsm8k-baseline",
        "eval_flaky",
        [answer_record(0, True), answer_record(1, False, error="TimeoutError: model too slow")],
    )
    storage.create_experiment("gsm8k-large")
    storage.create_experiment("20240101-000000-ab12cd34", ephemeral=True)
    storage.close()
    return url
