"""How many workers a run gets (``dotevals._engine.executors.sizing``), without starting a pool."""

from __future__ import annotations

import os
import re

import psutil
import pytest

from dotevals._engine.executors.sizing import (
    DEFAULT_WORKER_MEMORY,
    WorkerCount,
    choose_workers,
    parse_memory,
    parse_workers,
)
from dotevals.errors import ConfigurationError

PHYSICAL_CORES = psutil.cpu_count(logical=False) or os.cpu_count() or 1


# choose_workers ---------------------------------------------------------------


def test_no_workers_requested_means_one_worker_in_the_main_process():
    choice = choose_workers(None)
    assert choice.count == 1
    assert "main process" in choice.reason
    assert "--workers" in choice.reason


@pytest.mark.parametrize("requested", [2, "2", " 2 "])
def test_explicit_worker_count_is_used_as_requested(requested, monkeypatch):
    monkeypatch.setattr(psutil, "cpu_count", lambda logical=True: 2)
    choice = choose_workers(requested, rows=1, worker_memory=10**15)
    assert choice == WorkerCount(2, "as requested")  # neither rows nor memory cap it


def test_one_worker_means_the_main_process_and_says_so():
    choice = choose_workers(1, rows=10)
    assert choice.count == 1
    assert str(choice) == "dotevals: sync evaluations run in the main process (1 worker requested)"


@pytest.mark.parametrize("requested", [3, 40])
def test_more_workers_than_physical_cores_are_started_with_a_word(requested, monkeypatch):
    monkeypatch.setattr(psutil, "cpu_count", lambda logical=True: 2)
    choice = choose_workers(requested, rows=1, worker_memory=10**15)
    assert choice.count == requested
    assert str(choice) == (
        f"dotevals: {requested} workers (as requested, more than the 2 physical cores: they "
        "share them, which only helps rows that wait; --workers auto starts one per core)"
    )


def test_auto_is_at_most_the_physical_cores():
    choice = choose_workers("auto")
    assert 1 <= choice.count <= PHYSICAL_CORES
    match = re.fullmatch(r"(\d+) physical cores?, ([\d.]+) GiB free(.*)", choice.reason)
    assert match, choice.reason
    assert int(match.group(1)) == PHYSICAL_CORES
    assert float(match.group(2)) > 0
    if choice.count == PHYSICAL_CORES:
        assert match.group(3) == ""  # nothing capped it


def test_auto_without_a_memory_cap_uses_every_physical_core():
    choice = choose_workers("auto", worker_memory=1)
    assert choice.count == PHYSICAL_CORES
    assert "per worker" not in choice.reason


@pytest.mark.parametrize("rows", [0, 1])
def test_auto_is_capped_by_the_rows_to_run(rows):
    choice = choose_workers("auto", rows=rows)
    assert choice.count == 1
    assert choice.reason.endswith(f", {rows} row{'s' if rows != 1 else ''} to run")


def test_auto_with_more_rows_than_cores_is_not_capped_by_rows():
    choice = choose_workers("auto", rows=10_000, worker_memory=1)
    assert choice.count == PHYSICAL_CORES
    assert "to run" not in choice.reason


@pytest.mark.skipif(PHYSICAL_CORES < 2, reason="one core: memory cannot lower the count")
def test_auto_is_capped_by_memory_per_worker():
    choice = choose_workers("auto", rows=1000, worker_memory=10**15)
    assert choice.count == 1
    assert "per worker" in choice.reason
    assert re.search(r"at [\d.]+ GiB per worker", choice.reason), choice.reason


@pytest.mark.skipif(PHYSICAL_CORES < 2, reason="one core: memory cannot lower the count")
def test_auto_memory_cap_allows_what_fits():
    available = psutil.virtual_memory().available
    # room for about 1.5 workers: memory caps at 1 (the free figure moves a little)
    choice = choose_workers("auto", worker_memory=int(available / 1.5))
    assert choice.count == 1
    assert "per worker" in choice.reason


def test_auto_default_worker_memory_is_512_mib():
    assert DEFAULT_WORKER_MEMORY == 512 * 2**20
    expected = min(PHYSICAL_CORES, max(1, psutil.virtual_memory().available // 2**29))
    # free memory may move a little between the two readings
    assert abs(choose_workers("auto").count - expected) <= 1


@pytest.mark.parametrize("requested", [0, -3, "0", "-1", "lots", "2.5", 2.0, True, False, ""])
def test_bad_worker_counts_are_configuration_errors(requested):
    with pytest.raises(ConfigurationError) as info:
        choose_workers(requested)
    message = str(info.value)
    assert message.startswith("workers must be a whole number >= 1 or 'auto'")
    assert repr(requested) in message


def test_parse_workers_keeps_none_and_auto():
    assert parse_workers(None) is None
    assert parse_workers("auto") == "auto"
    assert parse_workers("3") == 3


# parse_memory ---------------------------------------------------------------


@pytest.mark.parametrize(
    "text, size",
    [
        (None, 512 * 2**20),
        (1, 1),
        (4096, 4096),
        ("4096", 4096),
        ("512MiB", 512 * 2**20),
        ("512mib", 512 * 2**20),
        ("512MB", 512 * 2**20),
        ("512m", 512 * 2**20),
        ("2GB", 2 * 2**30),
        ("2GiB", 2 * 2**30),
        ("2 GiB", 2 * 2**30),
        (" 2g ", 2 * 2**30),
        ("1.5g", int(1.5 * 2**30)),
        ("0.5GiB", 2**29),
        ("100k", 100 * 2**10),
        ("100KB", 100 * 2**10),
        ("100kib", 100 * 2**10),
        ("100b", 100),
        ("100B", 100),
    ],
)
def test_parse_memory_accepted_forms(text, size):
    assert parse_memory(text) == size


@pytest.mark.parametrize(
    "text", ["abc", "", "0", 0, -5, "-1GB", "2TB", "2 G B", "1e9", "GiB", "1,5g", "0.0g", True]
)
def test_parse_memory_errors(text):
    with pytest.raises(ConfigurationError) as info:
        parse_memory(text)
    message = str(info.value)
    assert message.startswith("worker memory must look like 512MiB, 2GB or a number of bytes")
    assert message.endswith(f"got {text!r}")


# WorkerCount ----------------------------------------------------------------


def test_worker_count_string_is_the_header_line():
    assert str(WorkerCount(1, "1 row to run")) == (
        "dotevals: sync evaluations run in the main process (1 row to run)"
    )
    assert str(WorkerCount(2, "as requested")) == "dotevals: 2 workers (as requested)"
    assert (
        str(WorkerCount(2, "2 physical cores, 21.4 GiB free"))
        == "dotevals: 2 workers (2 physical cores, 21.4 GiB free)"
    )


def test_worker_count_is_a_frozen_value():
    count = WorkerCount(2, "as requested")
    assert count == WorkerCount(2, "as requested")
    with pytest.raises(AttributeError):
        count.count = 3  # type: ignore[misc]


def test_chosen_count_prints_as_a_header_line():
    text = str(choose_workers("auto", rows=1))
    assert re.fullmatch(
        r"dotevals: sync evaluations run in the main process "
        r"\(\d+ physical cores?, [\d.]+ GiB free.*, 1 row to run\)",
        text,
    ), text


# --workers auto counts the rows left to run -------------------------------------------


def test_workers_auto_leaves_out_the_rows_already_stored(tmp_path):
    from dotevals import Score, foreach
    from dotevals.runners import Runner, RunReporter

    @foreach("n", range(40))
    def eval_resumed(n):
        return Score("v", n)

    class Notices(RunReporter):
        def __init__(self) -> None:
            self.lines: list[str] = []

        def message(self, text: str) -> None:
            self.lines.append(text)

    url = f"json://{tmp_path}"
    Runner(experiment_name="e", storage=url, samples=39, progress=False).run([eval_resumed])
    for expected in ("1 row to run", "0 rows to run"):  # 39 of 40, then all 40, stored
        notices = Notices()
        runner = Runner(
            experiment_name="e", storage=url, workers="auto", progress=False, reporter=notices
        )
        runner.run([eval_resumed])
        (line,) = notices.lines
        assert line.startswith("dotevals: sync evaluations run in the main process (")
        assert line.endswith(f", {expected})")
    store = Runner(experiment_name="e", storage=url, progress=False).store
    assert store.remaining_rows("eval_resumed", 40, None) == 0
    assert store.remaining_rows("eval_resumed", 50, 4) == 4  # at most --samples
    assert store.remaining_rows("eval_other", 40, None) == 40
