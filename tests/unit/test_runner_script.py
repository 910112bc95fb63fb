"""The Runner used directly, in this process: its options and what it refuses."""

from __future__ import annotations

import asyncio

import pytest

import dotevals
from dotevals import Runner, Score, foreach
from dotevals.errors import ConfigurationError
from dotevals.storage import get_storage


def test_unknown_runner_option_is_rejected():
    with pytest.raises(ConfigurationError, match="unknown Runner option bogus"):
        Runner(bogus=1)
    with pytest.raises(ConfigurationError, match="unknown Runner option also_bad, bogus"):
        Runner(bogus=1, also_bad=2)


@pytest.mark.parametrize("samples", [-1, 2.5, "3", True])
def test_runner_rejects_bad_samples(samples):
    with pytest.raises(ConfigurationError, match="samples must be a whole number >= 0"):
        Runner(samples=samples)


def test_runner_rejects_what_is_not_an_evaluation(tmp_path):
    runner = Runner(storage=f"json://{tmp_path / 'store'}", progress=False)

    def plain(x):
        return x

    with pytest.raises(ConfigurationError, match="is not an evaluation"):
        asyncio.run(runner.run_evaluations([plain]))
    assert runner.outcomes == []


# --- the option table: Runner, dotevals.run and pytest take the same options -------------


def test_run_takes_timeout_and_worker_memory(tmp_path):
    @foreach("n", [1, 2])
    async def eval_waits(n):
        if n == 2:
            await asyncio.Event().wait()  # never set: only the timeout ends this row
        return Score("ok", True)

    url = f"json://{tmp_path / 'store'}"
    summary = dotevals.run(
        eval_waits, storage=url, experiment="t", progress=False, timeout=0.2, worker_memory="1GiB"
    )
    assert summary.rows == 2
    records = sorted(get_storage(url).load_records("t", "eval_waits"), key=lambda r: r.item_id)
    assert records[0].error is None
    assert records[1].error.startswith("RowTimeoutError")


def test_fixtures_named_like_options_are_given_apart(tmp_path):
    @foreach("n", [1, 2, 3])
    def eval_named(n, storage, workers, model):
        return Score("seen", (storage, workers, model) == ("mine", 7, "m"))

    url = f"json://{tmp_path / 'store'}"
    fixtures = {"storage": "mine", "workers": 7}
    summary = dotevals.run(
        eval_named,
        fixtures=fixtures,
        model="m",
        storage=url,
        samples=2,
        experiment="f",
        progress=False,
    )
    assert summary.rows == 2  # samples=2 is the option, storage=url the storage
    records = get_storage(url).load_records("f", "eval_named")
    assert [r.result.scores[0].value for r in records] == [True, True]
    with pytest.raises(ConfigurationError, match="model given both in fixtures= and by keyword"):
        dotevals.run(eval_named, fixtures={**fixtures, "model": "m"}, model="m", storage=url)
