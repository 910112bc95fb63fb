"""Usage and cost: read from responses by their shape, summed per evaluation and per
model, priced by the table or by the user, and budgets that stop and resume."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from cli_runs import run_cli
from stores import KINDS, opened, storage_url

import dotevals
from dotevals import Result, Score, foreach
from dotevals.llm import Usage, add_usage, cost_of, current_row, read_usage, record_settings, track
from dotevals.llm import cost as prices

genai_prices = pytest.importorskip("genai_prices")

OPENAI_CHAT = {
    "model": "gpt-4o",
    "usage": {
        "prompt_tokens": 1200,
        "completion_tokens": 300,
        "prompt_tokens_details": {"cached_tokens": 1000},
        "completion_tokens_details": {"reasoning_tokens": 0},
    },
}
OPENAI_RESPONSES = {
    "model": "o4-mini",
    "usage": {
        "input_tokens": 50,
        "output_tokens": 400,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens_details": {"reasoning_tokens": 320},
    },
}
ANTHROPIC = SimpleNamespace(
    model="claude-3-5-sonnet-latest",
    usage=SimpleNamespace(
        input_tokens=20, output_tokens=7, cache_read_input_tokens=100, cache_creation_input_tokens=5
    ),
)


@pytest.fixture(autouse=True)
def no_prices_set():
    saved = dict(prices._SET)
    prices._SET.clear()
    yield
    prices._SET.clear()
    prices._SET.update(saved)


def test_usage_is_read_from_each_sdks_shape():
    assert read_usage(OPENAI_CHAT) == Usage(1200, 300, 1000, 0)
    assert read_usage(OPENAI_RESPONSES) == Usage(50, 400, 0, 320)
    # Anthropic keeps cache reads and writes out of input_tokens: they are added in
    assert read_usage(ANTHROPIC) == Usage(125, 7, 100, 0)
    with pytest.raises(ValueError, match="has no usage block"):
        read_usage({"choices": []})
    with pytest.raises(ValueError, match="prompt_tokens is 'many'"):
        read_usage({"usage": {"prompt_tokens": "many"}})


def test_usage_counts_are_whole_numbers_and_add_up():
    assert Usage(1, 2, 0, 1) + Usage(3, 4, 1, 0) == Usage(4, 6, 1, 1)
    with pytest.raises(TypeError, match="input_tokens must be a whole number"):
        Usage(input_tokens=-1)
    with pytest.raises(TypeError, match=r"output_tokens must be a whole number from 0 to 2\*\*63"):
        Usage(output_tokens=2**63)
    with pytest.raises(TypeError, match="usage is kept per model"):
        Result(usage=Usage(1, 1))


def test_outside_a_row_usage_and_settings_are_not_kept():
    assert current_row() is None
    assert add_usage("m", Usage(1, 1)) is False
    assert record_settings("m", temperature=0.2) is False
    assert track(OPENAI_CHAT) is OPENAI_CHAT


def test_cost_of_a_model_in_the_table_is_its_tokens_times_the_published_prices():
    published = genai_prices.calc_price(genai_prices.Usage(input_tokens=1), "gpt-4o").model_price
    usage = read_usage(OPENAI_CHAT)
    expected = (
        200 * float(published.input_mtok)
        + 1000 * float(published.cache_read_mtok)
        + 300 * float(published.output_mtok)
    ) / 1e6
    assert cost_of("gpt-4o", usage) == pytest.approx(expected)
    assert cost_of("a-model-nobody-sells", usage) is None


def test_a_price_tiered_by_the_input_s_length_is_the_table_s_own_calculation():
    """A flat price is computed from the table's price once looked up; a tiered one
    (gemini-2.5-pro: dearer past 200k input tokens) by the table for each usage."""
    run = prices.Prices()
    for tokens in (1_000, 300_000):
        expected = genai_prices.calc_price(
            genai_prices.Usage(input_tokens=tokens, output_tokens=10), "gemini-2.5-pro"
        ).total_price
        assert run.cost("gemini-2.5-pro", Usage(tokens, 10)) == pytest.approx(float(expected))
    assert run.price("gemini-2.5-pro") is None  # no one price per million tokens
    flat = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=1200, cache_read_tokens=1000, output_tokens=300), "gpt-4o"
    ).total_price
    for _ in range(2):  # looked up, then from what the run found
        assert run.cost("gpt-4o", read_usage(OPENAI_CHAT)) == pytest.approx(float(flat))


def test_a_price_set_wins_over_the_table():
    prices.set_price("gpt-4o", input=1.0, output=2.0)
    assert cost_of("gpt-4o", Usage(1_000_000, 500_000, 0, 0)) == pytest.approx(2.0)
    prices.set_price("mine", input=1.0, output=2.0, cached_input=0.5)
    assert cost_of("mine", Usage(1_000_000, 0, 1_000_000, 0)) == pytest.approx(0.5)
    with pytest.raises(dotevals.errors.ConfigurationError, match="finite number >= 0"):
        prices.set_price("bad", input=float("nan"), output=1.0)


@pytest.mark.parametrize("kind", KINDS)
def test_usage_sums_equal_the_sum_of_the_rows_per_model(tmp_path, capsys, kind):
    prices.set_price("local", input=10.0, output=20.0)

    @foreach("i", range(6))
    def eval_calls(i):
        track({"model": "local", "usage": {"prompt_tokens": 10 * i, "completion_tokens": i}})
        record_settings("local", temperature=0.0)
        if i == 5:
            raise RuntimeError("the call's tokens count even when the row fails")
        return Result(Score("ok", True), usage={"gpt-4o": Usage(i, 1)})

    url = storage_url(kind, tmp_path)
    summary = dotevals.run(eval_calls, storage=url, experiment="e", progress=False)
    with opened(url) as storage:
        records = storage.load_records("e", "eval_calls")
        info = storage.evaluation_info("e", "eval_calls")
    rows_local = sum((r.result.usage["local"] for r in records), Usage())
    assert rows_local == Usage(150, 15) == summary.usage["local"]
    assert summary.usage["gpt-4o"] == Usage(10, 5)
    assert summary.cost["local"] == pytest.approx(sum(r.cost["local"] for r in records))
    assert summary.cost["local"] == pytest.approx((150 * 10 + 15 * 20) / 1e6)
    assert summary.total_cost == pytest.approx(sum(sum(r.cost.values()) for r in records))
    assert all(r.duration is not None and r.duration >= 0 for r in records)
    assert info.metadata["usage"]["local"]["input_tokens"] == 150
    assert info.metadata["model_settings"] == {"local": {"temperature": 0.0}}
    code, out, _ = run_cli(capsys, "show", "e", "--storage", url)
    assert code == 0 and "local" in out and "total cost: $" in out and "p95" in out


def test_an_evaluation_that_calls_no_model_shows_its_latency_alone(tmp_path, capsys):
    @foreach("i", range(3))
    def eval_plain(i):
        return Score("ok", True)

    url = f"json://{tmp_path}"
    dotevals.run(eval_plain, storage=url, experiment="e", progress=False)
    code, out, _ = run_cli(capsys, "show", "e", "--storage", url)
    header = next(line for line in out.splitlines() if "p95" in line)
    assert code == 0 and header.split() == ["evaluation", "p50", "p95"]


@pytest.mark.parametrize("kind", KINDS)
def test_max_cost_stops_new_rows_at_the_budget_and_a_larger_one_resumes(tmp_path, kind):
    prices.set_price("paid", input=1_000_000.0, output=0.0)  # one dollar per input token
    messages = []

    @foreach("i", range(10))
    def eval_paid(i):
        add_usage("paid", Usage(input_tokens=1))
        return Score("ok", True)

    url = storage_url(kind, tmp_path)
    reporter = dotevals.RunReporter()
    reporter.message = messages.append  # type: ignore[method-assign]
    runner = dotevals.Runner(
        experiment="e", storage=url, max_cost=3, progress=False, reporter=reporter
    )
    runner.run([eval_paid])
    (outcome,) = runner.outcomes
    assert outcome.budget == "--max-cost 3 USD reached (3.0000 USD stored)"
    assert outcome.summary.samples == 3 and outcome.error is None
    assert [m for m in messages if "budget" in m] == [
        "dotevals: the budget is spent, no new row starts: --max-cost 3 USD reached "
        "(3.0000 USD stored) in experiment 'e'; run again with a larger --max-cost to resume"
    ]
    with opened(url) as storage:
        assert storage.evaluation_info("e", "eval_paid").status == "interrupted"
    again = dotevals.run(eval_paid, storage=url, experiment="e", max_cost=3, progress=False)
    assert again.samples == 3  # still spent: nothing starts
    done = dotevals.run(eval_paid, storage=url, experiment="e", max_cost=100, progress=False)
    assert done.samples == 10 and done.total_cost == pytest.approx(10.0)


def test_max_tokens_counts_every_evaluation_of_the_experiment(tmp_path):
    @foreach("i", range(10))
    def eval_one(i):
        add_usage("m", Usage(input_tokens=2, output_tokens=1))
        return Score("ok", True)

    @foreach("i", range(10))
    def eval_two(i):
        add_usage("m", Usage(input_tokens=2, output_tokens=1))
        return Score("ok", True)

    url = storage_url("json", tmp_path)
    dotevals.run(eval_one, storage=url, experiment="e", progress=False)  # 30 tokens
    second = dotevals.run(eval_two, storage=url, experiment="e", max_tokens=36, progress=False)
    assert second.samples == 2


def test_concurrent_async_rows_each_report_into_their_own_row(tmp_path):
    import asyncio

    from dotevals import ForEach
    from dotevals.concurrency import SlidingWindow

    @ForEach(concurrency=SlidingWindow(8))("i", range(24))
    async def eval_async(i):
        for _ in range(3):  # the rows' calls interleave on the loop
            await asyncio.sleep(0)
            add_usage("m", Usage(input_tokens=i, output_tokens=1))
        record_settings("m", row=current_row().item_id)
        return Score("ok", True)

    url = storage_url("json", tmp_path)
    summary = dotevals.run(eval_async, storage=url, experiment="e", progress=False)
    with opened(url) as storage:
        records = storage.load_records("e", "eval_async")
    assert [r.result.usage["m"] for r in records] == [Usage(3 * i, 3) for i in range(24)]
    assert [r.settings for r in records] == [{"m": {"row": i}} for i in range(24)]
    assert summary.usage["m"] == Usage(3 * sum(range(24)), 72)
