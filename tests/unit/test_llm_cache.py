"""The response cache: its key, its modes and expiry, several processes at once, a
writer killed with kill -9, a damaged file, and ``dotevals cache``."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_runs import run_cli

from dotevals.errors import ConfigurationError
from dotevals.llm.cache import ResponseCache, cache_key
from dotevals.llm.settings import default_cache_path, parse_cache_mode, parse_expiry
from dotevals.storage import get_storage

URL = "http://127.0.0.1:8000/v1"
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}


def answer(text: str) -> dict:
    return {"choices": [{"message": {"role": "assistant", "content": text}}]}


def store(cache: ResponseCache, key: str, text: str = "hello", model: str = "m") -> None:
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    cache.put(key, model=model, base_url=URL, epoch=0, response=answer(text), usage=usage)


def test_the_key_covers_server_model_request_settings_and_epoch():
    key = cache_key(URL, BODY, 0)
    assert key == cache_key(URL, dict(reversed(list(BODY.items()))), 0)  # order-free
    others = [
        cache_key("http://127.0.0.1:9000/v1", BODY, 0),
        cache_key(URL, {**BODY, "model": "other"}, 0),
        cache_key(URL, {**BODY, "temperature": 0.5}, 0),
        cache_key(URL, {**BODY, "messages": [{"role": "user", "content": "hi!"}]}, 0),
        cache_key(URL, {**BODY, "tools": [{"type": "function", "function": {"name": "f"}}]}, 0),
        cache_key(URL, BODY, 1),
    ]
    assert len({key, *others}) == 7


def test_a_stored_answer_is_read_back(tmp_path: Path):
    cache = ResponseCache(tmp_path / "c.db")
    assert cache.get("k") is None
    store(cache, "k", "hello")
    hit = cache.get("k")
    assert hit is not None and hit.response == answer("hello") and hit.usage["total_tokens"] == 5
    store(cache, "k", "again")  # the same key: replaced
    assert cache.get("k").response == answer("again")


def test_modes(tmp_path: Path):
    path = tmp_path / "c.db"
    off = ResponseCache(path, "off")
    store(off, "k")
    assert not path.exists() and off.get("k") is None
    read_only = ResponseCache(path, "read-only")
    store(read_only, "k")
    assert read_only.get("k") is None and not path.exists()  # never creates the file
    refresh = ResponseCache(path, "refresh")
    store(refresh, "k", "new")
    assert refresh.get("k") is None  # never reads
    assert ResponseCache(path, "read-only").get("k").response == answer("new")


def test_an_expired_entry_is_a_miss(tmp_path: Path):
    path = tmp_path / "c.db"
    store(ResponseCache(path), "k")
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE responses SET created_at = ?", (time.time() - 7200,))
    assert ResponseCache(path, expiry="1h").get("k") is None
    assert ResponseCache(path, expiry="3h").get("k") is not None
    assert ResponseCache(path).get("k") is not None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("3600", 3600), ("30m", 1800), ("12h", 43200), ("7d", 604800), ("2w", 1209600)],
)
def test_expiry_durations(text: str, seconds: float):
    assert parse_expiry(text) == seconds


@pytest.mark.parametrize("bad", ["0", "-1", "soon", "7x", "inf"])
def test_a_bad_expiry_or_mode_is_refused(bad: str):
    with pytest.raises(ConfigurationError, match="cache expiry"):
        parse_expiry(bad)
    with pytest.raises(ConfigurationError, match="cache must be one of"):
        parse_cache_mode(bad)


def test_the_default_file_is_beside_the_results(tmp_path: Path):
    assert default_cache_path(get_storage(f"json://{tmp_path / '.dotevals'}")) == (
        tmp_path / ".dotevals" / "cache.db"
    )
    assert default_cache_path(get_storage(f"json://{tmp_path / 'results'}")) == (
        tmp_path / ".dotevals" / "cache.db"
    )
    assert default_cache_path(get_storage(f"sqlite://{tmp_path / 'runs' / 'r.db'}")) == (
        tmp_path / "runs" / ".dotevals" / "cache.db"
    )


def test_the_cache_pickles_as_its_settings(tmp_path: Path):
    import pickle

    cache = ResponseCache(tmp_path / "c.db", "refresh", "1d")
    store(cache, "k")
    copy = pickle.loads(pickle.dumps(cache))
    assert (copy.path, copy.mode, copy.expiry) == (cache.path, "refresh", 86400)
    store(copy, "k2")
    assert ResponseCache(cache.path).get("k2") is not None


def _write_many(path: str, start: int, count: int) -> None:
    cache = ResponseCache(path)
    for n in range(start, start + count):
        store(cache, f"key-{n}", f"answer {n}")


def test_several_processes_write_at_once(tmp_path: Path):
    path = str(tmp_path / "c.db")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_many, args=(path, 1000 * n, 150)) for n in range(4)]
    for worker in workers:
        worker.start()
    _write_many(path, 9000, 150)  # this process too, meanwhile
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    cache = ResponseCache(path)
    assert cache.stats()["entries"] == 750
    assert cache.get("key-3149").response == answer("answer 3149")


WRITER = """
import sys
from dotevals.llm.cache import ResponseCache
cache = ResponseCache(sys.argv[1])
big = "x" * 100_000
n = 0
while True:
    cache.put(f"key-{n}", model="m", base_url="u", epoch=0,
              response={"choices": [{"message": {"content": big + str(n)}}]}, usage=None)
    n += 1
    if n % 20 == 0:
        print(n, flush=True)
"""


def test_a_writer_killed_with_kill_9_leaves_the_cache_readable(tmp_path: Path):
    path = tmp_path / "c.db"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        written = 0
        while written < 200:  # it writes on and on: it is killed in the middle of a write
            line = writer.stdout.readline()
            assert line, "the writer stopped"
            written = int(line)
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(30)
    assert writer.returncode == -signal.SIGKILL
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    cache = ResponseCache(path)
    entries = cache.stats()["entries"]
    assert entries >= written
    for n in (0, written - 1, entries - 1):
        assert cache.get(f"key-{n}").response["choices"][0]["message"]["content"].endswith(str(n))
    store(cache, "after", "still writable")
    assert cache.get("after") is not None


def test_a_damaged_file_is_reported_once_and_calls_go_on(tmp_path: Path):
    path = tmp_path / "c.db"
    path.write_bytes(b"this is no database" * 100)
    cache = ResponseCache(path)
    with pytest.warns(RuntimeWarning, match="cannot be used"):
        assert cache.get("k") is None
    store(cache, "k")  # no second warning, no error
    assert cache.get("k") is None


def test_cache_stats_prune_and_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = tmp_path / "c.db"
    cache = ResponseCache(path)
    store(cache, "a", model="m1")
    store(cache, "b", model="m1")
    store(cache, "c", model="m2")
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE responses SET created_at = ? WHERE key = 'a'", (time.time() - 9e5,))
    code, out, _ = run_cli(capsys, "cache", "stats", "--cache-path", str(path), "--format", "json")
    report = json.loads(out)
    assert code == 0 and report["entries"] == 3
    assert [(m["model"], m["entries"], m["total_tokens"]) for m in report["models"]] == [
        ("m1", 2, 10),
        ("m2", 1, 5),
    ]
    code, out, _ = run_cli(capsys, "cache", "stats", "--cache-path", str(path))
    assert code == 0 and "m1" in out and "3 entries" in out
    code, out, _ = run_cli(
        capsys, "cache", "prune", "--older-than", "7d", "--cache-path", str(path)
    )
    assert code == 0 and "Deleted 1 entry" in out
    code, out, _ = run_cli(capsys, "cache", "clear", "--model", "m2", "--cache-path", str(path))
    assert code == 0 and "Deleted 1 entry of model 'm2'" in out
    assert cache.stats()["entries"] == 1
    code, out, _ = run_cli(capsys, "cache", "clear", "--cache-path", str(path))
    assert code == 0 and cache.stats()["entries"] == 0


def test_cache_commands_find_the_default_file_beside_the_storage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    storage = f"json://{tmp_path / 'results'}"
    store(ResponseCache(default_cache_path(get_storage(storage))), "k")
    code, out, _ = run_cli(capsys, "cache", "stats", "--storage", storage)
    assert code == 0 and "1 entries" in out and str(tmp_path / ".dotevals" / "cache.db") in out
    code, out, err = run_cli(capsys, "cache", "prune", "--older-than", "soon", "--storage", storage)
    assert code == 1 and "cache expiry must be a duration" in err


def test_stats_of_a_cache_that_does_not_exist(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    code, out, _ = run_cli(capsys, "cache", "stats", "--cache-path", str(tmp_path / "none.db"))
    assert code == 0 and "No entries." in out
    assert not (tmp_path / "none.db").exists()
