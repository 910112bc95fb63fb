"""What the progress bar and the pytest summary say of model calls, from the records'
``model_calls``."""

from __future__ import annotations

import io

from dotevals._report.text import model_calls_line
from dotevals._run.progress import ProgressBar
from dotevals.llm import cost
from dotevals.llm.cost import set_price
from dotevals.llm.usage import Usage
from dotevals.models import Record, Result
from dotevals.runners import EvaluationOutcome


def calls(hits: int, misses: int, limited: int = 0, limit: int = 32) -> dict:
    usage = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    call = {"model": "m", "cached": hits > 0, "limit": limit, "usage": usage}
    return {
        "cache_hits": hits,
        "cache_misses": misses,
        "rate_limited": limited,
        "calls": [call],
    }


def test_the_bar_shows_the_live_limit_and_the_429s():
    out = io.StringIO()
    bar = ProgressBar("eval", 3, True, out)
    bar.update(Record(Result(), 0, {}, model_calls=calls(0, 1)))
    assert bar.postfix() == "limit=32"
    bar.update(Record(Result(), 1, {}, model_calls=calls(0, 1, limited=2, limit=8)))
    bar.update(Record(Result(), 2, {}, error="ValueError: x"))
    assert bar.postfix() == "errors=1 limit=8 429s=2"
    assert bar._bar.postfix == "errors=1 limit=8 429s=2"  # what tqdm draws at its next refresh
    bar.close()


def test_the_summary_line_counts_hits_misses_and_429s():
    first, second = EvaluationOutcome("a", None), EvaluationOutcome("b", None)
    assert model_calls_line([first, second]) is None
    first.model_calls.add(calls(3, 1))
    second.model_calls.add(calls(1, 0, limited=2))
    assert model_calls_line([first, second]) == (
        "model cache: 4 hits, 1 misses (80 %), saving 20 tokens; 2 answers were 429 (rate limited)"
    )
    assert first.model_calls.saved == {"m": Usage(input_tokens=7, output_tokens=3)}


def test_the_summary_line_prices_what_the_hits_saved(monkeypatch):
    monkeypatch.setattr(cost, "_SET", {})  # the prices set in this process, for this test
    outcome = EvaluationOutcome("a", None)
    outcome.model_calls.add(calls(1, 0))
    set_price("m", input=1000.0, output=2000.0)
    outcome.model_calls.add(calls(1, 0))  # two hits of 7 input and 3 output tokens each
    saved = 2 * (7 * 1000.0 + 3 * 2000.0) / 1e6
    assert model_calls_line([outcome]) == (
        f"model cache: 2 hits, 0 misses (100 %), saving 20 tokens, ${saved:.4f}"
    )
