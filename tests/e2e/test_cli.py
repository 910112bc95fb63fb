"""The ``dotevals`` command, run on storage filled through the storage API."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dotevals.metrics import accuracy
from dotevals.models import Record, Result, Score
from dotevals.storage import EvaluationInfo, get_storage

STARTED = 1_700_000_000.0


def _record(item_id: int, correct: bool, error: str | None = None) -> Record:
    score = Score("exact_match", correct, [accuracy()])
    row = {"question": f"What is {item_id} + 1?", "answer": str(item_id + 1)}
    if error:
        return Record(Result(), item_id, row, error=error)
    return Record(Result(score, prompt=row["question"]), item_id, row)


@pytest.fixture(params=["json", "sqlite"])
def url(request, tmp_path):
    """A storage holding two named experiments and one ephemeral one.

    ``gsm8k-baseline``: ``eval_math`` completed with a stored summary (4 rows,
    3 correct) and ``eval_flaky`` still running, without a summary (2 rows,
    1 correct, 1 errored). ``gsm8k-large``: no evaluations.
    """
    location = tmp_path / ("s" if request.param == "json" else "s.db")
    url = f"{request.param}://{location}"
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
    storage.add_records("gsm8k-baseline", "eval_math", [_record(i, i != 2) for i in range(4)])
    storage.save_evaluation("gsm8k-baseline", EvaluationInfo("eval_flaky", started_at=STARTED))
    storage.add_records(
        "gsm8k-baseline",
        "eval_flaky",
        [_record(0, True), _record(1, False, error="TimeoutError: model too slow")],
    )
    storage.create_experiment("gsm8k-large")
    storage.create_experiment("20240101-000000-ab12cd34", ephemeral=True)
    storage.close()
    return url


def test_subprocess(url, tmp_path):
    def dotevals(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "dotevals.cli", *argv],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
        )

    listed = dotevals("list", "--storage", url)
    assert listed.returncode == 0, listed.stderr
    assert "gsm8k-baseline" in listed.stdout and "Ephemeral experiments" in listed.stdout

    shown = dotevals("show", "gsm8k-baseline", "--storage", url, "--format", "json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["evaluations"][0]["rows"] == 4

    (tmp_path / ".dotevals").mkdir()
    missing = dotevals("show", "nope")  # the default storage, json://.dotevals in cwd
    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr == (
        "error: experiment 'nope' not found in json://.dotevals (see 'dotevals list')\n"
    )

    datasets = dotevals("datasets", "-v")
    assert datasets.returncode == 0 and "arithmetic" in datasets.stdout
