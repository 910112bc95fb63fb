"""A record's stored text, made from its parts, is the whole record's JSON encoding,
character for character, whatever the record holds."""

from __future__ import annotations

import enum
import json
import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from record_strategies import dataset_rows, json_values, records

from dotevals.llm.usage import Usage
from dotevals.metrics import accuracy, mean, metric
from dotevals.models import Record, Result, Score
from dotevals.storage.encoding import decode_record, encode_record
from dotevals.storage.json_text import encode_json
from dotevals.storage.record_text import record_text


@metric
def share_at_least(threshold: float):
    """A metric made with an argument: its spec is an object, not a name."""
    return lambda values: sum(v >= threshold for v in values) / len(values)


class Colour(enum.IntEnum):
    RED = 1


class Label(str):
    pass


class Odd:
    def __repr__(self) -> str:
        return "<odd>"


#: Values the JSON encoder turns into something else, or cannot take as they are.
odd_values = st.sampled_from(
    [
        math.nan,
        math.inf,
        -math.inf,
        {1, 2},
        frozenset(),
        (1, "a"),
        Decimal("1.5"),
        Decimal(3),
        Colour.RED,
        Label("x"),
        Odd(),
        {1: "int key"},
        {(1, 2): "tuple key"},
        {None: 1, True: 2, 1.5: 3},
        {"nested": [math.nan, {"deeper": math.inf}]},
        "lone \ud800 surrogate",
        "non-ASCII: é ✓ 😀",
        '\x00\x1f control \n " \\',
        2**70,
        -0.0,
        1e300,
    ]
)
values = st.one_of(json_values, odd_values)


def cyclic() -> dict:
    """An object that holds itself: the encoder stores the inner one as "..."."""
    data: dict = {"a": 1}
    data["self"] = data
    return data


def the_whole_encoding(record: Record) -> str:
    return encode_json(record.to_dict())


def assert_same_text(record: Record) -> None:
    text = record_text(record)
    whole = the_whole_encoding(record)
    # None only for text UTF-8 cannot hold, which the whole record's encoding escapes
    assert text == whole if text is not None else whole.isascii()
    assert encode_record(record) == whole


@given(records())
def test_plain_records(record):
    assert_same_text(record)


@given(
    row=st.one_of(dataset_rows, st.dictionaries(st.text(max_size=5), values, max_size=3)),
    value=values,
    metadata=st.dictionaries(st.text(max_size=5), values, max_size=3),
    prompt=st.none() | st.text(max_size=10),
    error=st.none() | st.text(max_size=10),
    epoch=st.integers(0, 5),
    duration=st.none() | st.floats(allow_nan=True),
    usage=st.dictionaries(
        st.text(max_size=8),
        st.builds(Usage, *[st.integers(0, 2**63 - 1)] * 4),
        max_size=2,
    ),
    cost=st.dictionaries(st.text(max_size=8), st.floats(), max_size=2),
    settings=st.dictionaries(
        st.text(max_size=8), st.dictionaries(st.text(max_size=5), values, max_size=2), max_size=2
    ),
    calls=st.none() | st.dictionaries(st.text(max_size=5), values, max_size=2),
    traceback=st.none() | st.text(max_size=20),
)
def test_records_with_every_field_and_odd_values(
    row, value, metadata, prompt, error, epoch, duration, usage, cost, settings, calls, traceback
):
    record = Record(
        Result(
            Score("s", value, [accuracy(), share_at_least(0.5)], metadata),
            Score("t", 1, [mean()]),
            prompt=prompt,
            error=error,
            usage=usage,
        ),
        3,
        row,
        epoch=epoch,
        duration=duration,
        cost=cost,
        settings=settings,
        traceback=traceback,
    )
    record.model_calls = calls
    assert_same_text(record)


def test_objects_that_hold_themselves_are_cut_where_they_do_as_before():
    record = Record(Result(Score("s", [cyclic()], metadata={"m": cyclic()})), 0, cyclic())
    assert_same_text(record)
    assert '"self": "..."' in record_text(record)


def test_a_lone_surrogate_makes_the_whole_record_escaped_as_before():
    record = Record(Result(Score("s", "a \ud800 b")), 0, {"q": "é"})
    assert record_text(record) is None
    text = encode_record(record)
    assert text.isascii() and "\\ud800" in text and "\\u00e9" in text
    assert decode_record(text, 0).result.scores[0].value == "a \ud800 b"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_values_are_tagged_and_read_back(value):
    record = Record(Result(Score("s", value)), 0, {"x": value}, duration=value)
    text = encode_record(record)
    json.loads(text)  # strict JSON: no NaN
    back = decode_record(text, 0)
    assert repr(back.result.scores[0].value) == repr(value)
    assert repr(back.dataset_row["x"]) == repr(value)
