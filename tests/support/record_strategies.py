"""Hypothesis strategies for records and the values they hold, shared by the storage
property tests."""

from __future__ import annotations

from hypothesis import strategies as st

from dotevals.metrics import accuracy, mean
from dotevals.models import Record, Result, Score

# Text is any unicode without surrogates (st.text() leaves them out); a few
# strings are large (up to ~100 KB), made by repetition so they are cheap to draw.
small_text = st.text(max_size=40)
large_text = st.builds(
    lambda char, n, tail: char * n + tail,
    st.characters(codec="utf-8"),  # st.characters() alone includes surrogates
    st.integers(1_000, 100_000),
    st.text(max_size=10),
)
texts = st.one_of(small_text, small_text, small_text, large_text)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    small_text,
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=10), children, max_size=4),
    ),
    max_leaves=12,
)
score_values = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    small_text,
)
metric_lists = st.sampled_from([[], [accuracy()], [mean()], [accuracy(), mean()]])
scores = st.builds(
    Score,
    name=st.text(min_size=1, max_size=15),
    value=score_values,
    metrics=metric_lists,
    metadata=st.dictionaries(st.text(max_size=10), json_values, max_size=3),
)
results = st.builds(
    lambda scores, prompt, error, response: Result(
        *scores, prompt=prompt, error=error, model_response=response
    ),
    st.lists(scores, max_size=3),
    st.none() | texts,
    st.none() | st.none() | st.none() | small_text,  # a Result error makes the row failed
    st.none() | texts,
)
item_ids = st.integers(0, 40)
dataset_rows = st.dictionaries(st.text(max_size=12), json_values | texts, max_size=4)
row_errors = st.one_of(st.none(), st.none(), st.none(), small_text.map(lambda t: f"Error: {t}"))


@st.composite
def records(draw: st.DrawFn, ids: st.SearchStrategy[int] = item_ids) -> Record:
    return Record(
        result=draw(results),
        item_id=draw(ids),
        dataset_row=draw(dataset_rows),
        error=draw(row_errors),
        timestamp=draw(st.floats(0, 4e9, allow_nan=False)),
    )
