"""The per-model limiter: requests per minute spaced evenly, a concurrency limit that
halves on a 429 and grows back with success, a Retry-After that pauses one model only,
one limiter per model key in a process, and the share of each local worker."""

from __future__ import annotations

import asyncio

import pytest

from dotevals.errors import ConfigurationError
from dotevals.llm.limits import WORKERS_VARIABLE, Limits, ModelLimiter, limiter_for


def test_limits_are_checked():
    for bad in ({"rpm": 0}, {"tpm": -5}, {"concurrency": 0}, {"concurrency": 2.5}):
        with pytest.raises(ConfigurationError):
            Limits(**bad)


def test_each_local_worker_gets_its_share(monkeypatch: pytest.MonkeyPatch):
    limits = Limits(rpm=600, tpm=90_000, concurrency=9)
    assert limits.per_process() == limits
    monkeypatch.setenv(WORKERS_VARIABLE, "4")
    assert limits.per_process() == Limits(rpm=150, tpm=22_500, concurrency=3)


def test_one_limiter_per_model_key_and_the_lowest_limit_wins():
    first = limiter_for("http://a/v1#m-shared", Limits(rpm=600, concurrency=8))
    again = limiter_for("http://a/v1#m-shared", Limits(rpm=60, concurrency=16))
    other = limiter_for("http://b/v1#m-shared", Limits())
    assert first is again and other is not first
    assert first.limits == Limits(rpm=60, concurrency=8)


def test_a_429_halves_the_concurrency_once_per_burst_and_success_raises_it_again():
    async def scenario() -> list[int]:
        limiter = ModelLimiter("k", Limits(concurrency=8))
        seen = [limiter.limit]
        limiter.too_many_requests(None)
        limiter.too_many_requests(None)  # the same burst: counted, not halved again
        seen += [limiter.limit, limiter.rate_limited]
        for _ in range(4):  # one round of successes at the limit
            await limiter.acquire()
            limiter.release(True)
        seen.append(limiter.limit)
        for _ in range(100):
            await limiter.acquire()
            limiter.release(True)
        seen.append(limiter.limit)
        return seen

    assert asyncio.run(scenario()) == [8, 4, 2, 5, 8]


def test_no_more_requests_in_flight_than_the_limit_and_a_cancelled_waiter_frees_nothing():
    async def scenario() -> tuple[int, int, int]:
        limiter = ModelLimiter("k", Limits(concurrency=2))
        busy = most = 0

        async def call(seconds: float) -> None:
            nonlocal busy, most
            await limiter.acquire()
            busy += 1
            most = max(most, busy)
            try:
                await asyncio.sleep(seconds)
            finally:
                busy -= 1
                limiter.release(True)

        tasks = [asyncio.ensure_future(call(0.02)) for _ in range(8)]
        waiting = asyncio.ensure_future(call(0))
        await asyncio.sleep(0.001)
        waiting.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(waiting, return_exceptions=True)
        return most, limiter.in_flight, len([t for t in tasks if not t.cancelled()])

    assert asyncio.run(scenario()) == (2, 0, 8)


def test_a_retry_after_pauses_this_model_only():
    async def scenario() -> tuple[float, float]:
        paused = ModelLimiter("paused", Limits())
        free = ModelLimiter("free", Limits())
        loop = asyncio.get_running_loop()
        paused.too_many_requests(0.3)
        start = loop.time()
        await free.acquire()
        free_wait = loop.time() - start
        await paused.acquire()
        return free_wait, loop.time() - start

    free_wait, paused_wait = asyncio.run(scenario())
    assert free_wait < 0.1
    assert paused_wait >= 0.3


def test_requests_per_minute_are_spaced_evenly():
    async def scenario() -> list[float]:
        limiter = ModelLimiter("k", Limits(rpm=600))  # one every 0.1 s
        loop = asyncio.get_running_loop()
        times = []
        for _ in range(6):
            await limiter.acquire()
            times.append(loop.time())
            limiter.release(True)
        return times

    times = asyncio.run(scenario())
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) >= 0.1 - 0.005  # the loop's clock granularity
    assert times[-1] - times[0] >= 0.5 - 0.005


def test_tokens_per_minute_hold_back_a_request_past_the_bucket():
    async def scenario() -> float:
        limiter = ModelLimiter("k", Limits(tpm=6000))  # 100 tokens a second
        loop = asyncio.get_running_loop()
        await limiter.acquire(6000)  # the whole minute's bucket
        limiter.release(True)
        start = loop.time()
        await limiter.acquire(50)
        return loop.time() - start

    assert asyncio.run(scenario()) >= 0.45


def test_above_1200_a_minute_a_late_request_is_made_up_for_and_a_run_starts_steady():
    async def scenario() -> tuple[float, float]:
        limiter = ModelLimiter("k", Limits(rpm=12_000))  # 200 a second; bucket of 20
        loop = asyncio.get_running_loop()
        start = loop.time()
        for _ in range(21):  # no burst at the start: 20 gaps of 5 ms
            await limiter.acquire()
            limiter.release(True)
        steady = loop.time() - start
        await asyncio.sleep(0.05)  # requests that start 50 ms late: 10 made up for at once
        start = loop.time()
        for _ in range(10):
            await limiter.acquire()
            limiter.release(True)
        return steady, loop.time() - start

    steady, late = asyncio.run(scenario())
    assert steady >= 20 * 60 / (12_000 - 20 + 1) - 0.005
    assert late < 0.03
