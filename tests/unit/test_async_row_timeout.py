"""An async row that catches the cancellation of its timeout and goes on: its record is
made at the deadline, the run goes on, and the row is closed after a grace, or when the
loop ends (``_engine/scoring.py``). Real event loops, bounded waits."""

from __future__ import annotations

import asyncio
import threading

import pytest

from dotevals._engine import scoring
from dotevals._engine.scoring import ascore_row


def stubborn(marks: list[str]):
    async def row(i: int):
        try:
            while True:
                try:
                    await asyncio.sleep(0.01)
                except asyncio.CancelledError:
                    marks.append("cancellation swallowed")
        finally:
            marks.append("closed")

    return row


def run_to_its_end(main) -> None:
    """``asyncio.run(main())`` in a thread, failing (not hanging) if it never ends."""
    outcome: list[BaseException | None] = []

    def target() -> None:
        try:
            asyncio.run(main())
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "the event loop never ended"
    assert outcome == [None]


def test_a_row_that_swallows_its_cancellation_lets_the_loop_end():
    marks: list[str] = []
    records = []

    async def main() -> None:
        records.append(await ascore_row(stubborn(marks), 0, 0, {"i": 0}, {}, timeout=0.05))

    run_to_its_end(main)
    (record,) = records
    assert record.error == "RowTimeoutError: the row ran longer than its 0.05 s timeout"
    assert marks[0] == "cancellation swallowed" and marks[-1] == "closed"


def test_the_run_goes_on_and_the_row_is_closed_after_the_grace(monkeypatch):
    monkeypatch.setattr(scoring, "CANCEL_GRACE", 0.01)
    marks: list[str] = []
    seen: list[list[str]] = []

    async def main() -> None:
        record = await ascore_row(stubborn(marks), 0, 0, {"i": 0}, {}, timeout=0.05)
        assert record.failed
        for _ in range(6000):  # while the run goes on, the row is closed
            if "closed" in marks:
                break
            await asyncio.sleep(0.01)
        seen.append(list(marks))
        later = await ascore_row(_answer, 1, 0, {"i": 1}, {}, timeout=5)
        assert not later.failed

    run_to_its_end(main)
    assert seen[0][-1] == "closed"


async def _answer(i: int):
    from dotevals import Score

    return Score("ok", True)


@pytest.mark.parametrize("ending", ["returns", "raises"])
def test_a_row_that_ends_when_cancelled_is_not_reported_again(ending, capfd):
    async def polite(i: int):
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            if ending == "raises":
                raise ValueError("cleaning up failed") from None
            raise

    async def main() -> None:
        record = await ascore_row(polite, 0, 0, {"i": 0}, {}, timeout=0.05)
        assert record.error.startswith("RowTimeoutError")
        await asyncio.sleep(0.05)

    run_to_its_end(main)
    assert capfd.readouterr().err == ""  # no "exception never retrieved"
