"""The worker side of the process pool, called in this process: start-up and sending back."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import cloudpickle
import pytest
from loky import BrokenProcessPool
from loky.process_executor import TerminatedWorkerError
from pool_support import dead_pid

from dotevals import Result, Score
from dotevals._declare.retry_policy import make_policy
from dotevals._engine.executors.local import LocalPool
from dotevals._engine.wire import Payload, pack_payload, pack_rows
from dotevals._engine.worker import process as worker
from dotevals.errors import TransferError, WorkerDiedError
from dotevals.metrics import accuracy, mean
from dotevals.storage.encoding import encode_record, storable


class Exited(Exception):
    pass


@pytest.fixture
def exits(monkeypatch):
    """``os._exit`` of the worker module raises Exited(code) instead of ending this process."""

    def fake_exit(code: int) -> None:
        raise Exited(code)

    monkeypatch.setattr(worker.os, "_exit", fake_exit)


def test_a_worker_whose_main_process_died_before_it_started_exits_at_once(exits, monkeypatch):
    path = list(sys.path)
    monkeypatch.setattr(worker.sys, "path", path)
    with pytest.raises(Exited) as exited:
        worker.initialize(["/nowhere"], "/", dead_pid(), "/nowhere")
    assert exited.value.args == (1,)
    assert path == sys.path  # it left before taking anything over


def test_the_watch_ends_the_worker_once_its_main_process_is_gone(exits):
    with pytest.raises(Exited):  # this process's parent is neither it nor a server it started
        worker._exit_with_main(dead_pid(), os.getppid())


def lock_at_one(n: int) -> Score:
    return Score("s", threading.Lock() if n == 1 else n)


def test_run_chunk_sends_back_every_record_and_blames_the_one_that_cannot_travel():
    payload = pack_payload("eval_lock", Payload(lock_at_one, make_policy(None), (), {}, {}, ()))
    try:
        packed, seconds = worker.run_chunk(
            "e", payload, pack_rows([(i, 0, {"n": i}) for i in range(3)])
        )
    finally:
        worker.close_fixtures()
    records = cloudpickle.loads(packed)
    assert seconds >= 0
    assert [r.item_id for r in records] == [0, 1, 2]
    assert [r.result.scores[0].value for r in records if not r.failed] == [0, 2]
    assert records[1].dataset_row == {"n": 1}
    assert records[1].error.startswith(
        "TransferError: the row's result cannot be sent back from its worker process "
        "(TypeError: cannot pickle '_thread.lock' object); return plain values"
    )


def two_metrics(n: int) -> Result:
    return Result(Score("right", n > 0, [accuracy()]), Score("size", {n, -n}, [mean()]))


def test_run_chunk_sends_records_encoded_for_storage_with_one_metric_object_per_chunk():
    payload = pack_payload("eval_two", Payload(two_metrics, make_policy(None), (), {}, {}, ()))
    try:
        packed, _ = worker.run_chunk("e", payload, pack_rows([(i, 0, {"n": i}) for i in range(3)]))
    finally:
        worker.close_fixtures()
    records = cloudpickle.loads(packed)
    # the text the main process would have made, from the values as they arrive
    assert [r.stored_text for r in records] == [encode_record(storable(r)) for r in records]
    assert records[2].result.scores[1].value == [-2, 2]
    first, second = (r.result.scores for r in records[:2])
    assert [m.name for score in first for m in score.metrics] == ["accuracy", "mean"]
    assert first[0].metrics[0] is second[0].metrics[0]  # rebuilt once, not once per row
    assert first[1].metrics[0] is second[1].metrics[0]


def test_a_terminated_worker_is_a_death_and_any_other_broken_pool_a_transfer_error():
    pool = LocalPool(2)
    died = pool.blame(TerminatedWorkerError("The exit codes of the workers are {SIGKILL(-9)}"))
    assert isinstance(died, WorkerDiedError)
    assert str(died) == (
        "the worker process scoring this row died "
        "(killed by signal SIGKILL, as the out-of-memory killer does)"
    )
    broken = BrokenProcessPool("A task has failed to un-serialize.")
    broken.__cause__ = RuntimeError("Traceback ...\nModuleNotFoundError: No module named 'gone'")
    transfer = pool.blame(broken)
    assert isinstance(transfer, TransferError)
    assert "A task has failed to un-serialize." in str(transfer)
    assert "ModuleNotFoundError: No module named 'gone'" in str(transfer)


class CountsUnpickling:
    """A fixture value that counts how often a payload holding it is unpickled."""

    loads = 0

    def __reduce__(self):
        return (_count_unpickling, ())


def _count_unpickling() -> CountsUnpickling:
    CountsUnpickling.loads += 1
    return CountsUnpickling()


def uses_counted(n: int, counted: CountsUnpickling) -> Score:
    return Score("s", n)


def test_a_worker_unpickles_an_evaluations_payload_once_for_all_its_chunks():
    def payload() -> bytes:
        values = {"counted": CountsUnpickling()}
        spec = Payload(uses_counted, make_policy(None), ("counted",), {}, values, ())
        return pack_payload("eval_counted", spec)

    CountsUnpickling.loads = 0
    try:
        for evaluation, start in [("first", 0), ("first", 2), ("first", 4), ("second", 0)]:
            rows = pack_rows([(i, 0, {"n": i}) for i in range(start, start + 2)])
            packed, _ = worker.run_chunk(evaluation, payload(), rows)
            assert [r.item_id for r in cloudpickle.loads(packed)] == [start, start + 1]
    finally:
        worker.close_fixtures()
    assert CountsUnpickling.loads == 2  # once per evaluation, not once per chunk


def test_the_fork_server_preloads_the_worker_side_by_its_name():
    from dotevals._engine.executors import fork_server_exit
    from dotevals._engine.executors.fork_server import PRELOAD
    from dotevals._engine.worker import process

    assert [fork_server_exit.__name__, process.__name__, "pytest"] == PRELOAD


def test_the_fork_servers_exit_module_imported_elsewhere_leaves_the_exit_as_it_is():
    """Only the fork server's preload makes a process leave without its teardown: any
    other process that imports the module keeps its exit status and its teardown."""
    code = (
        "import dotevals._engine.executors.fork_server_exit, sys\n"
        "class TornDown:\n"
        "    def __del__(self, write=sys.stdout.write):\n"
        "        write('torn down')\n"
        "KEEP = TornDown()\n"
        "sys.exit(3)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (3, "torn down")
