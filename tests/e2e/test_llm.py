"""The OpenAI-compatible provider against a real HTTP server on 127.0.0.1
(``chat_server.ChatServer``): the cache, the retries, the limits, and the ``llm``
fixture in real pytest runs. No mock stands in for the client: the openai SDK talks
HTTP to the server, which counts what it receives."""

from __future__ import annotations

import asyncio
import json
import pickle
import sqlite3
from pathlib import Path

import openai
import pytest
from chat_server import ChatServer, Reply
from pytest_runs import run_pytest

from dotevals.llm.openai import OpenAIModel, OpenAIProvider
from dotevals.llm.row import Row, enter, leave
from dotevals.storage import get_storage


@pytest.fixture
def model(chat_server: ChatServer, tmp_path: Path) -> OpenAIModel:
    llm = OpenAIModel("tiny", base_url=chat_server.url, cache_path=tmp_path / "cache.db")
    yield llm
    llm.close()


#: The rows ``in_row`` entered, left again after the test.
_ENTERED: list = []


def in_row(epoch: int = 0, is_async: bool = False) -> Row:
    """Make the calls that follow as if a row of ``epoch`` were being scored."""
    row = Row(0, epoch, 0, is_async)
    _ENTERED.append(enter(row))
    return row


@pytest.fixture(autouse=True)
def _no_row() -> None:
    yield
    while _ENTERED:
        leave(_ENTERED.pop())


def test_a_sync_call_gives_the_text_and_messages_are_taken(model: OpenAIModel, chat_server):
    assert model("hello") == "tiny says hello (#1)"
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert model(messages) == "tiny says hi (#2)"
    assert chat_server.requests[1].body["messages"] == messages
    assert model.settings.model == "tiny" and model.settings.base_url == chat_server.url


def test_an_async_call_gives_the_text(model: OpenAIModel):
    async def main() -> list[str]:
        return await asyncio.gather(*(model(f"q{i}") for i in range(3)))

    assert sorted(answer.split(" (#")[0] for answer in asyncio.run(main())) == [
        "tiny says q0",
        "tiny says q1",
        "tiny says q2",
    ]


def test_generate_settings_go_into_every_request(chat_server: ChatServer, tmp_path: Path):
    llm = OpenAIModel(
        "tiny",
        base_url=chat_server.url,
        temperature=0.2,
        max_tokens=64,
        seed=7,
        cache="off",
        cache_path=tmp_path / "c.db",
    )
    llm("x")
    llm("y", temperature=0.9)
    bodies = [r.body for r in chat_server.requests]
    assert {k: bodies[0][k] for k in ("temperature", "max_tokens", "seed")} == {
        "temperature": 0.2,
        "max_tokens": 64,
        "seed": 7,
    }
    assert bodies[1]["temperature"] == 0.9
    assert llm.__dotevals_metadata__() == {
        "provider": "openai",
        "model": "tiny",
        "base_url": chat_server.url,
        "temperature": 0.2,
        "max_tokens": 64,
        "seed": 7,
        "cache": "off",
    }
    llm.close()


def test_the_sdk_environment_variables_work(chat_server, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", chat_server.url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    llm = OpenAIModel("tiny", cache="off", cache_path=tmp_path / "c.db")
    assert llm.settings.base_url == chat_server.url
    assert llm("env") == "tiny says env (#1)"
    llm.close()


def test_a_cached_answer_sends_no_request_and_the_row_records_it(model, chat_server):
    row = in_row()
    first = model("same")
    assert model("same") == first and chat_server.count == 1
    assert row.calls is not None
    assert (row.calls.cache_hits, row.calls.cache_misses) == (1, 1)
    assert row.calls.calls[1]["cached"] and row.calls.calls[1]["usage"]["total_tokens"] > 0


def test_a_new_epoch_sends_a_new_request(model: OpenAIModel, chat_server: ChatServer):
    in_row(epoch=0)
    first = model("repeat me")
    in_row(epoch=1)
    second = model("repeat me")
    assert chat_server.count == 2 and first != second
    in_row(epoch=0)
    assert model("repeat me") == first and chat_server.count == 2


def test_two_models_never_share_an_entry(chat_server: ChatServer, tmp_path: Path):
    path = tmp_path / "shared.db"
    small = OpenAIModel("small", base_url=chat_server.url, cache_path=path)
    large = OpenAIModel("large", base_url=chat_server.url, cache_path=path)
    assert small("q") == "small says q (#1)"
    assert large("q") == "large says q (#2)"
    assert (small("q"), large("q")) == ("small says q (#1)", "large says q (#2)")
    assert chat_server.count == 2
    with ChatServer() as elsewhere:  # the same model name on another server
        other = OpenAIModel("small", base_url=elsewhere.url, cache_path=path)
        assert other("q") == "small says q (#1)" and elsewhere.count == 1
        other.close()
    small.close()
    large.close()


def test_a_429_with_retry_after_is_retried_after_it_and_succeeds(model, chat_server):
    chat_server.plan(Reply(429, {"Retry-After": "1"}))
    row = in_row()
    assert model("patience") == "tiny says patience (#2)"
    first, second = chat_server.requests
    assert (first.status, second.status) == (429, 200)
    assert second.time - first.time >= 1.0
    assert row.calls is not None
    assert row.calls.rate_limited == 1 and row.calls.calls[0]["rate_limited"] == 1


def test_a_400_is_not_retried_and_errors_are_never_cached(model, chat_server):
    chat_server.plan(Reply(400))
    with pytest.raises(openai.BadRequestError):
        model("bad")
    assert chat_server.count == 1
    assert model("bad") == "tiny says bad (#2)"  # asked again: the error was not stored
    assert chat_server.count == 2


def test_a_500_is_retried(model: OpenAIModel, chat_server: ChatServer):
    chat_server.plan(Reply(500, {"retry-after-ms": "10"}), Reply(503, {"retry-after-ms": "10"}))
    assert model("flaky") == "tiny says flaky (#3)"
    assert [r.status for r in chat_server.requests] == [500, 503, 200]


def test_when_its_retries_are_spent_the_error_is_marked_for_the_row_policy(
    chat_server: ChatServer, tmp_path: Path
):
    llm = OpenAIModel("tiny", base_url=chat_server.url, retries=1, cache_path=tmp_path / "c.db")
    chat_server.plan(*[Reply(500, {"retry-after-ms": "1"})] * 2)
    with pytest.raises(openai.InternalServerError) as caught:
        llm("down")
    from dotevals.llm.retries import is_retryable

    assert chat_server.count == 2 and not is_retryable(caught.value)
    llm.close()


def test_a_slow_answer_past_the_timeout_is_retried(chat_server: ChatServer, tmp_path: Path):
    llm = OpenAIModel("tiny", base_url=chat_server.url, timeout=0.3, cache_path=tmp_path / "c.db")
    chat_server.plan(Reply(delay=2.0))
    assert llm("slow") == "tiny says slow (#2)"
    llm.close()


def test_read_only_and_refresh(chat_server: ChatServer, tmp_path: Path):
    path = tmp_path / "c.db"
    reader = OpenAIModel("tiny", base_url=chat_server.url, cache="read-only", cache_path=path)
    reader("q")
    assert not path.exists()
    OpenAIModel("tiny", base_url=chat_server.url, cache_path=path)("q")  # #2 stored
    assert reader("q") == "tiny says q (#2)" and chat_server.count == 2
    refresher = OpenAIModel("tiny", base_url=chat_server.url, cache="refresh", cache_path=path)
    assert refresher("q") == "tiny says q (#3)"
    assert reader("q") == "tiny says q (#3)" and chat_server.count == 3


def test_the_model_pickles_and_works_on_the_other_side(model: OpenAIModel, chat_server):
    model("before")
    copy = pickle.loads(pickle.dumps(model))
    assert copy.settings == model.settings and copy.cache.path == model.cache.path
    assert copy("before") == "tiny says before (#1)"  # from the shared cache
    assert copy("after") == "tiny says after (#2)"
    copy.close()


def test_the_provider_keeps_the_model_provider_interface(chat_server, tmp_path):
    provider = OpenAIProvider(base_url=chat_server.url, cache_path=tmp_path / "c.db")

    async def main() -> str:
        async with await provider.setup("openai/tiny", temperature=0) as handle:
            assert isinstance(handle.model, OpenAIModel)
            assert handle.model.settings.temperature == 0
            return await handle.model.agenerate("via a handle")

    assert asyncio.run(main()) == "tiny says via a handle (#1)"


# real pytest runs ------------------------------------------------------------------
EVALS = """
from dotevals import Result, Score, foreach
from dotevals.metrics import accuracy

@foreach("q", ["a", "b", "c"])
async def eval_async(q, llm):
    answer = await llm(f"async {q}")
    return Result(Score("ok", f"async {q}" in answer, [accuracy()]), model_response=answer)

@foreach("q", ["a", "b"])
def eval_sync(q, llm):
    return Score("ok", f"sync {q}" in llm(f"sync {q}"), [accuracy()])
"""


def run_evals(pytester: pytest.Pytester, server: ChatServer, *args: str) -> pytest.RunResult:
    store = f"json://{pytester.path / 'results'}"
    model = ("--model", "openai/tiny", "--model-base-url", server.url)
    return run_pytest(pytester, "--storage", store, *model, *args)


def records(pytester: pytest.Pytester, experiment: str) -> dict[str, list]:
    storage = get_storage(f"json://{pytester.path / 'results'}")
    return {
        name: list(storage.iter_records(experiment, name))
        for name in storage.list_evaluations(experiment)
    }


@pytest.mark.parametrize("workers", [None, "2"])
def test_a_second_run_of_an_experiment_sends_no_request(
    pytester: pytest.Pytester, chat_server: ChatServer, workers: str | None
):
    pytester.makepyfile(eval_models=EVALS)
    more = ("--workers", workers) if workers else ()
    first = run_evals(pytester, chat_server, "--experiment", "one", *more)
    first.assert_outcomes(passed=2)
    assert chat_server.count == 5
    first.stdout.fnmatch_lines(["model cache: 0 hits, 5 misses (0 %)"])
    second = run_evals(pytester, chat_server, "--experiment", "two", *more)
    second.assert_outcomes(passed=2)
    assert chat_server.count == 5
    second.stdout.fnmatch_lines(["model cache: 5 hits, 0 misses (100 %), saving * tokens"])
    stored = records(pytester, "two")
    calls = [r.model_calls for rs in stored.values() for r in rs]
    assert len(calls) == 5 and all(c["cache_hits"] == 1 for c in calls)
    assert (pytester.path / ".dotevals" / "cache.db").is_file()  # beside the results
    info = get_storage(f"json://{pytester.path / 'results'}").evaluation_info(
        "two", "eval_models.py::eval_sync"
    )
    assert info.metadata["models"]["llm"]["model"] == "tiny"
    assert info.metadata["models"]["llm"]["base_url"] == chat_server.url


def test_cache_off_sends_every_request_again(pytester: pytest.Pytester, chat_server):
    pytester.makepyfile(eval_models=EVALS)
    run_evals(pytester, chat_server, "--experiment", "one").assert_outcomes(passed=2)
    run_evals(pytester, chat_server, "--experiment", "two", "--cache", "off").assert_outcomes(
        passed=2
    )
    assert chat_server.count == 10


def test_the_cache_path_option(pytester: pytest.Pytester, chat_server: ChatServer):
    pytester.makepyfile(eval_models=EVALS)
    pytester.makeini("[pytest]\ndotevals_cache_path = caches/models.db\n")
    run_evals(pytester, chat_server, "--experiment", "one").assert_outcomes(passed=2)
    with sqlite3.connect(pytester.path / "caches" / "models.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == 5


TWO_EVALS_ONE_MODEL = """
from dotevals import Score, foreach

@foreach("q", range(4))
async def eval_first(q, llm):
    return Score("ok", bool(await llm(f"first {q}")))

@foreach("q", range(4))
async def eval_second(q, llm):
    return Score("ok", bool(await llm(f"second {q}")))
"""


def test_two_evaluations_calling_one_model_keep_its_requests_per_minute_together(
    pytester: pytest.Pytester, chat_server: ChatServer
):
    pytester.makepyfile(eval_two=TWO_EVALS_ONE_MODEL)
    result = run_evals(pytester, chat_server, "--concurrent", "--model-rpm", "120")
    result.assert_outcomes(passed=2)
    times = sorted(r.time for r in chat_server.requests)
    prompts = {r.body["messages"][0]["content"].split()[0] for r in chat_server.requests}
    assert len(times) == 8 and prompts == {"first", "second"}
    # 120 a minute: the limiter lets one request go every 0.5 s, whichever evaluation
    # asks, so 8 requests span 3.5 s at least (with a limiter each, 1.5 s). The server
    # sees a request when it arrives, which may be late on a loaded machine: up to 1 s
    # of lateness is allowed, and one late request more than the 3 that a closed second
    # can hold (with a limiter each: 6).
    assert times[-1] - times[0] >= 3.5 - 1.0, times
    most_in_a_second = max(
        sum(t <= start + 1.0 for t in times[i:]) for i, start in enumerate(times)
    )
    assert most_in_a_second <= 3 + 1, times


def test_a_429_shows_in_the_records_and_the_row_succeeds(pytester, chat_server: ChatServer):
    pytester.makepyfile(eval_models=EVALS)
    chat_server.plan(Reply(429, {"retry-after-ms": "100"}))
    result = run_evals(pytester, chat_server, "--experiment", "one")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*1 answers were 429 (rate limited)*"])
    stored = records(pytester, "one")
    assert sum(r.model_calls["rate_limited"] for rs in stored.values() for r in rs) == 1


def test_a_400_fails_the_row_and_is_not_retried(pytester, chat_server: ChatServer):
    pytester.makepyfile(eval_models=EVALS)
    chat_server.plan(Reply(400))
    result = run_evals(pytester, chat_server, "--experiment", "one", "-k", "eval_sync")
    result.assert_outcomes(passed=1)
    stored = records(pytester, "one")["eval_models.py::eval_sync"]
    assert [r.error is not None for r in stored] == [True, False]
    assert "BadRequestError" in stored[0].error
    assert chat_server.count == 2  # one request per row: the 400 was not sent again


def test_the_llm_fixture_needs_a_model(pytester: pytest.Pytester):
    pytester.makepyfile(eval_models=EVALS)
    result = run_pytest(pytester, "--storage", f"json://{pytester.path / 'r'}")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*the llm fixture needs a model: give --model*"])


def test_a_bad_model_option_stops_the_session(pytester: pytest.Pytester):
    pytester.makepyfile(eval_models=EVALS)
    result = run_pytest(pytester, "--model", "gpt-4o-mini")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*model must be PROVIDER/MODEL such as openai/gpt-4o-mini*"])


def test_an_ordinary_test_may_use_the_llm_fixture(pytester, chat_server: ChatServer):
    pytester.makepyfile(
        test_plain="def test_it(llm):\n    assert llm('plain') == 'tiny says plain (#1)'\n"
    )
    pytester.makeini(
        f"[pytest]\ndotevals_model = openai/tiny\ndotevals_model_base_url = {chat_server.url}\n"
    )
    run_pytest(pytester).assert_outcomes(passed=1)
    assert (pytester.path / ".dotevals" / "cache.db").is_file()


def test_the_model_options_are_listed_in_help(pytester: pytest.Pytester):
    result = run_pytest(pytester, "--help")
    for flag in ("--model", "--model-base-url", "--cache", "--cache-path", "--cache-expiry"):
        result.stdout.fnmatch_lines([f"*{flag}=*"])


def test_records_without_model_calls_read_as_before(tmp_path: Path):
    from dotevals.models import Record, Result
    from dotevals.storage.encoding import decode_record, encode_record

    plain = Record(Result(), 0, {"q": 1})
    assert "model_calls" not in json.loads(encode_record(plain))
    calls = {"cache_hits": 1, "cache_misses": 0, "rate_limited": 0, "calls": []}
    with_calls = Record(Result(), 1, {"q": 2}, model_calls=calls)
    assert decode_record(encode_record(with_calls), 1).model_calls == calls


def test_the_provider_works_through_the_model_providers_entry_point(
    pytester: pytest.Pytester, chat_server: ChatServer
):
    from plugin_dists import install

    install(
        pytester.path,
        "[dotevals.model_providers]\nopenai_models = dotevals.llm.openai:OpenAIProvider\n",
    )
    pytester.makepyfile(
        test_entry=f"""
import asyncio

def test_it(openai_models, tmp_path):
    async def ask():
        handle = await openai_models.setup(
            "openai/tiny", base_url="{chat_server.url}", cache_path=tmp_path / "c.db"
        )
        return await handle.model.agenerate("entry point")

    assert asyncio.run(ask()) == "tiny says entry point (#1)"
"""
    )
    run_pytest(pytester).assert_outcomes(passed=1)


WORKER_LIMITS = """
import os
from dotevals import Score, foreach

@foreach("n", range(4))
def eval_limits(n, llm):
    limits = llm.limits.per_process()
    return Score("ok", bool(llm(f"w{n}")), metadata={
        "workers": os.environ.get("DOTEVALS_WORKER_COUNT"),
        "rpm": limits.rpm,
        "concurrency": limits.concurrency,
        "pid": os.getpid(),
    })
"""


def test_with_workers_each_builds_its_model_and_takes_its_share_of_the_limits(
    pytester: pytest.Pytester, chat_server: ChatServer
):
    pytester.makepyfile(eval_workers=WORKER_LIMITS)
    limits = ("--model-rpm", "6000", "--model-concurrency", "7")
    result = run_evals(pytester, chat_server, "--experiment", "w", "--workers", "2", *limits)
    result.assert_outcomes(passed=1)
    stored = records(pytester, "w")["eval_workers.py::eval_limits"]
    seen = [r.result.scores[0].metadata for r in stored]
    assert all(m["workers"] == "2" and m["rpm"] == 3000 and m["concurrency"] == 4 for m in seen)
    assert all(m["pid"] != __import__("os").getpid() for m in seen)
    assert chat_server.count == 4


def test_an_error_in_a_200_answer_fails_the_call_and_is_not_cached(tmp_path: Path):
    from aiohttp import web

    from dotevals.llm._loop import call_sync

    async def broken(request: web.Request) -> web.Response:
        return web.json_response({"error": {"message": "model overloaded"}})

    async def serve() -> tuple[web.AppRunner, int]:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", broken)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, site._server.sockets[0].getsockname()[1]

    runner, port = call_sync(serve())
    llm = OpenAIModel("tiny", base_url=f"http://127.0.0.1:{port}/v1", cache_path=tmp_path / "c")
    with pytest.raises(ValueError, match="answered without choices.*model overloaded"):
        llm("q")
    assert ResponseCacheStats(tmp_path / "c") == 0
    llm.close()
    call_sync(runner.cleanup())


def ResponseCacheStats(path: Path) -> int:  # noqa: N802 - reads as the count it is
    from dotevals.llm.cache import ResponseCache

    return ResponseCache(path).stats()["entries"]


@pytest.mark.parametrize("workers", [None, "2"])
def test_the_providers_calls_are_counted_and_priced_per_epoch_and_hits_save_them(
    pytester: pytest.Pytester, chat_server: ChatServer, workers: str | None
):
    """Each (row, epoch) asks the model once and stores the tokens it used and their cost;
    a second experiment answers every one from the cache, and says what that saved."""
    pytester.makepyfile(eval_models=EVALS)
    pytester.makeconftest(
        "from dotevals.llm import set_price\nset_price('tiny', input=1000.0, output=2000.0)\n"
    )
    more = ("--epochs", "2", *(("--workers", workers) if workers else ()))
    first = run_evals(pytester, chat_server, "--experiment", "one", *more)
    first.assert_outcomes(passed=2)
    assert chat_server.count == 10  # 5 rows, 2 epochs each
    stored = [r for rs in records(pytester, "one").values() for r in rs]
    assert sorted((r.item_id, r.epoch) for r in stored if r.item_id == 0) == [
        (0, 0),
        (0, 0),
        (0, 1),
        (0, 1),
    ]
    for record in stored:
        (used,) = record.result.usage.values()
        assert used.input_tokens > 0 and used.output_tokens > 0
        expected = (used.input_tokens * 1000.0 + used.output_tokens * 2000.0) / 1e6
        assert record.cost == {"tiny": pytest.approx(expected)}
    second = run_evals(pytester, chat_server, "--experiment", "two", *more)
    second.assert_outcomes(passed=2)
    assert chat_server.count == 10
    tokens = sum(u.input_tokens + u.output_tokens for r in stored for u in r.result.usage.values())
    cost = sum(r.cost["tiny"] for r in stored)
    second.stdout.fnmatch_lines(
        [f"model cache: 10 hits, 0 misses (100 %), saving {tokens:,} tokens, ${cost:.4f}"]
    )
    again = [r for rs in records(pytester, "two").values() for r in rs]
    assert all(not r.result.usage and not r.cost for r in again)  # a hit spends nothing
