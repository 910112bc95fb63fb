"""The batching record writer in a real pytest session: a full database fails its
evaluation with one line, and the next evaluation runs and is stored."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pytest_runs import FAST
from stores import stored_records

from dotevals.storage import get_storage

FULL_CONFTEST = """
from dotevals.storage.writer import RecordWriter
from dotevals.storage import register_storage
from dotevals.storage.sqlite import SQLiteStorage

RecordWriter.WRITE_PATIENCE = 1.0  # give up on the full database soon


class FillingSQLite(SQLiteStorage):
    '''The real sqlite backend; once eval_big has stored one batch its database may not grow
    (until another evaluation writes).'''

    batches = 0

    def _limit(self, evaluation):
        with self._db() as db:
            if not evaluation.endswith("eval_big"):
                db.execute("PRAGMA max_page_count = 1073741823")
            elif self.batches == 1:
                pages = db.execute("PRAGMA page_count").fetchone()[0]
                db.execute(f"PRAGMA max_page_count = {pages}")

    def save_evaluation(self, experiment, info):
        self._limit(info.name)
        super().save_evaluation(experiment, info)

    def add_records(self, experiment, evaluation, records):
        self._limit(evaluation)
        if evaluation.endswith("eval_big"):
            self.batches += 1
        super().add_records(experiment, evaluation, records)


register_storage("filling", FillingSQLite)
"""

FULL_EVAL = """
import time

from dotevals import Score, foreach


@foreach("n", range(600))
def eval_big(n):
    time.sleep(0.002)
    return Score("v", n)


@foreach("n", range(30))
def eval_small(n):
    return Score("v", n)
"""


def test_a_full_database_fails_its_evaluation_and_the_next_one_runs(tmp_path: Path):
    """sqlite's "database or disk is full" mid-run: that evaluation fails with one line, what
    it stored before stays readable, and the next evaluation runs and is stored."""
    (tmp_path / "conftest.py").write_text(FULL_CONFTEST)
    (tmp_path / "eval_full.py").write_text(FULL_EVAL)
    db = tmp_path / "f.sqlite"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *FAST, "-rf", "--experiment", "exp"]
        + ["--storage", f"filling://{db}", "--no-progress", "eval_full.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "INTERNALERROR" not in out and "Traceback" not in out
    assert [line.split(" - ")[0] for line in out.splitlines() if line.startswith("FAILED")] == [
        "FAILED eval_full.py::eval_big"
    ], out
    (reason,) = [  # the failure's line; the short summary repeats it, cut to the terminal width
        line
        for line in out.splitlines()
        if "could not be stored" in line and not line.startswith("FAILED")
    ]
    assert "rows of eval_full.py::eval_big could not be stored in filling://" in reason
    assert "database or disk is full" in reason
    assert "1 failed, 1 passed" in out

    stored = [r.item_id for r in stored_records(f"sqlite://{db}", "exp", "eval_full.py::eval_big")]
    assert 0 < len(stored) < 600
    assert stored == list(range(len(stored)))
    unstored = int(reason.split()[0])
    assert unstored == 600 - len(stored)
    name = "eval_full.py::eval_big"
    # its line in the summary's first table (the table of latency and usage follows it)
    table_line, _ = [line for line in out.splitlines() if line.startswith(f"{name} ")]
    assert table_line.split()[:4] == [name, str(len(stored)), str(len(stored)), "0"]
    small = stored_records(f"sqlite://{db}", "exp", "eval_full.py::eval_small")
    assert [r.item_id for r in small] == list(range(30))
    storage = get_storage(f"sqlite://{db}")
    assert storage.evaluation_info("exp", "eval_full.py::eval_small").status == "completed"
    storage.close()
