"""Tests of dotevals.evaluators: the @evaluator decorator and the built-ins."""

from __future__ import annotations

import asyncio
import inspect
import math
import pickle
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import cloudpickle
import pytest

from dotevals.evaluators import (
    ast_evaluation,
    evaluator,
    exact_match,
    get_metadata,
    numeric_match,
    python_ast_match,
    valid_json,
)
from dotevals.metrics import Metric, accuracy, mean, metric
from dotevals.models import EvaluationSummary, Record, Result, Score

ROOT = Path(__file__).resolve().parents[2]

# --- @evaluator ------------------------------------------------------------------


def test_evaluator_returns_a_score_with_value_metrics_and_name():
    @evaluator(metrics=[accuracy(), mean()])
    def contains(result, expected):
        return expected in result

    score = contains("Paris, France", "Paris")
    assert isinstance(score, Score)
    assert score.name == "contains"
    assert score.value is True
    assert score.metrics == [accuracy(), mean()]
    assert all(isinstance(m, Metric) for m in score.metrics)
    assert contains("Lyon", "Paris").value is False


def test_evaluator_accepts_a_single_metric():
    @evaluator(metrics=mean())
    def length(result):
        return len(result)

    score = length("abcd")
    assert score.value == 4
    assert score.metrics == [mean()]


def test_evaluator_name_overrides_the_function_name():
    @evaluator(metrics=accuracy(), name="same_city")
    def compare(result, expected):
        return result == expected

    assert compare("Paris", "Paris").name == "same_city"
    assert compare.__name__ == "compare"  # functools.wraps keeps the function's identity


def test_evaluator_keeps_the_wrapped_function_identity():
    def original(result: str, expected: str, strict: bool = True) -> bool:
        """Compare."""
        return result == expected

    wrapped = evaluator(metrics=accuracy())(original)
    assert wrapped.__name__ == "original"
    assert wrapped.__doc__ == "Compare."
    assert wrapped.__wrapped__ is original
    assert str(inspect.signature(wrapped)) == (
        "(result: 'str', expected: 'str', strict: 'bool' = True, *, "
        "name: 'str | None' = None) -> 'bool'"
    )


def test_evaluator_metadata_holds_positional_keyword_and_default_arguments():
    @evaluator(metrics=accuracy())
    def close(result, expected, tolerance=0.5, *, relative=False):
        return abs(result - expected) <= tolerance

    assert close(1.0, 1.2).metadata == {
        "result": 1.0,
        "expected": 1.2,
        "tolerance": 0.5,
        "relative": False,
    }
    assert close(1.0, expected=3.0, tolerance=2, relative=True).metadata == {
        "result": 1.0,
        "expected": 3.0,
        "tolerance": 2,
        "relative": True,
    }
    assert close(result=1.0, expected=3.0).value is False


def test_evaluator_metadata_of_var_args():
    @evaluator(metrics=accuracy())
    def any_of(result, *choices, **options):
        return result in choices

    score = any_of("b", "a", "b", case=True)
    assert score.value is True
    assert score.metadata == {"result": "b", "choices": ("a", "b"), "options": {"case": True}}


def test_evaluator_wrong_arguments_raise_like_the_function():
    @evaluator(metrics=accuracy())
    def two(result, expected):
        return result == expected

    with pytest.raises(TypeError):
        two("only one")


def test_evaluator_scores_are_independent():
    @evaluator(metrics=[accuracy()])
    def truthy(result):
        return bool(result)

    first, second = truthy(1), truthy(0)
    first.metrics.append(mean())
    first.metadata["extra"] = 1
    assert second.metrics == [accuracy()]
    assert second.metadata == {"result": 0}
    assert truthy(1).metrics == [accuracy()]


def test_evaluator_scores_go_into_a_result():
    @evaluator(metrics=accuracy())
    def same(result, expected):
        return result == expected

    result = Result(same("a", "a"), exact_match("a", "b"))
    assert [(s.name, s.value) for s in result.scores] == [("same", True), ("exact_match", False)]
    assert Result.from_dict(result.to_dict()) == result


def test_evaluator_without_metrics_is_a_type_error():
    with pytest.raises(TypeError, match=r"evaluator\(\) needs metrics="):
        evaluator()


def test_evaluator_used_bare_is_a_type_error():
    with pytest.raises(TypeError, match=r"@evaluator\(metrics=accuracy\(\)\)"):

        @evaluator
        def compare(result, expected):
            return result == expected


@pytest.mark.parametrize("metrics", [accuracy, [accuracy], ["accuracy"], "accuracy", 1])
def test_evaluator_rejects_what_is_not_a_metric(metrics):
    with pytest.raises(TypeError, match="Metric"):
        evaluator(metrics=metrics)


def test_evaluator_takes_an_empty_metric_list_for_scores_no_metric_aggregates():
    @evaluator(metrics=[])
    def length(result):
        return len(result)

    score = length("abc")
    assert (score.name, score.value, score.metrics) == ("length", 3, [])
    summary = EvaluationSummary([Record(Result(score), 0), Record(Result(length("a")), 1)])
    assert summary.metrics == {"length": {}}
    assert [r.result.scores[0].value for r in summary.records] == [3, 1]


def test_evaluator_with_a_custom_metric():
    @metric
    def share_above_half():
        def compute(values):
            return sum(1 for v in values if v > 0.5) / len(values) if values else 0.0

        return compute

    @evaluator(metrics=share_above_half())
    def overlap(result, expected):
        return len(set(result) & set(expected)) / len(set(expected))

    scores = [overlap("abc", "abd"), overlap("xyz", "abd")]
    assert scores[0].metrics[0].name == "share_above_half"
    assert scores[0].metrics[0]([s.value for s in scores]) == 0.5


def test_a_metric_factory_runs_once_without_arguments_and_per_call_with_them():
    made: list[tuple[float, ...]] = []

    @metric
    def counted_share(*threshold: float):
        made.append(threshold)
        return lambda values: sum(1 for v in values if v > (threshold or (0.5,))[0])

    assert counted_share() is counted_share()
    assert counted_share(0.8) is not counted_share(0.8)
    assert counted_share(0.8).spec == {"name": "counted_share", "args": [0.8], "kwargs": {}}
    assert made == [(), (0.8,), (0.8,), (0.8,)]
    assert pickle.loads(pickle.dumps(counted_share())) is counted_share()


def test_async_evaluator_returns_a_score():
    @evaluator(metrics=accuracy())
    async def judged(result, expected="yes"):
        await asyncio.sleep(0)
        return result == expected

    assert inspect.iscoroutinefunction(judged)
    score = asyncio.run(judged("yes"))
    assert isinstance(score, Score)
    assert (score.name, score.value, score.metadata) == (
        "judged",
        True,
        {"result": "yes", "expected": "yes"},
    )


# --- name= on every call ----------------------------------------------------------


F_PARAMS = {"properties": {"x": {"type": "integer"}}}
BUILTIN_CALLS = [
    (exact_match, ("a", "a")),
    (numeric_match, ("1", 1)),
    (valid_json, ("{}",)),
    (python_ast_match, ("x = 1",)),
    (ast_evaluation, ({"f": {"x": 1}}, {"f": {"x": 1}}, {"name": "f", "parameters": F_PARAMS})),
]


@pytest.mark.parametrize(("builtin", "args"), BUILTIN_CALLS)
def test_name_names_the_score_of_every_builtin(builtin, args):
    score = builtin(*args, name="openai_accuracy")
    assert (score.name, score.value) == ("openai_accuracy", True)
    assert "name" not in score.metadata
    assert score.metadata == builtin(*args).metadata
    assert builtin(*args, name=None).name == builtin.__name__


def test_name_names_the_score_of_a_custom_evaluator_over_its_default():
    @evaluator(metrics=accuracy(), name="same_city")
    def compare(result, expected, strict=True):
        return result == expected

    score = compare("Paris", "Paris", name="capital")
    assert (score.name, score.value) == ("capital", True)
    assert score.metadata == {"result": "Paris", "expected": "Paris", "strict": True}
    assert compare("Paris", "Paris").name == "same_city"


def test_name_goes_before_var_keyword_arguments():
    @evaluator(metrics=accuracy())
    def any_of(result, *choices, **options):
        return result in choices

    score = any_of("b", "a", "b", name="choice", case=True)
    assert score.name == "choice"
    assert score.metadata == {"result": "b", "choices": ("a", "b"), "options": {"case": True}}
    assert (
        str(inspect.signature(any_of)) == "(result, *choices, name: 'str | None' = None, **options)"
    )


def test_name_of_an_async_evaluator():
    @evaluator(metrics=accuracy())
    async def judged(result, expected="yes"):
        return result == expected

    score = asyncio.run(judged("yes", name="judge"))
    assert (score.name, score.value, score.metadata) == (
        "judge",
        True,
        {"result": "yes", "expected": "yes"},
    )


def test_a_name_parameter_with_a_default_is_kept_for_the_score():
    # Evaluators written to declare `name: Optional[str] = None` themselves.
    seen = []

    @evaluator(metrics=accuracy())
    def fuzzy(result, expected, threshold=0.8, name=None):
        seen.append(name)
        return result.lower() == expected.lower()

    score = fuzzy("A", "a", name="loose")
    assert (score.name, score.value) == ("loose", True)
    assert score.metadata == {"result": "A", "expected": "a", "threshold": 0.8}
    assert seen == [None]
    assert "name=None" in str(inspect.signature(fuzzy))


def test_a_name_parameter_without_a_default_is_refused():
    with pytest.raises(TypeError, match="greets has a parameter 'name' without a default"):

        @evaluator(metrics=accuracy())
        def greets(result, name):
            return name in result


@pytest.mark.parametrize("bad", ["", 3, ["a"]])
def test_name_must_be_a_non_empty_str(bad):
    with pytest.raises(TypeError, match=r"exact_match\(name=...\) takes a non-empty str"):
        exact_match("a", "a", name=bad)


def test_named_custom_evaluator_runs_after_cloudpickle():
    @evaluator(metrics=accuracy())
    def equal(result, expected):
        return result == expected

    copy = cloudpickle.loads(cloudpickle.dumps(equal))
    assert copy("a", "a", name="same").name == "same"


# --- get_metadata -------------------------------------------------------------------


def test_get_metadata_maps_parameters_to_arguments_with_defaults():
    def example(a, b, c=None):
        return None

    assert get_metadata(example, 1, 2, c=3) == {"a": 1, "b": 2, "c": 3}
    assert get_metadata(example, 1, b=2) == {"a": 1, "b": 2, "c": None}
    with pytest.raises(TypeError):
        get_metadata(example, 1)


# --- pickling -----------------------------------------------------------------------


def test_custom_evaluator_round_trips_through_cloudpickle():
    threshold = 3

    @evaluator(metrics=[accuracy(), mean()], name="long_enough")
    def long(result, minimum=threshold):
        return len(result) >= minimum

    copy = cloudpickle.loads(cloudpickle.dumps(long))
    score = copy("abcd")
    assert isinstance(score, Score)
    assert (score.name, score.value, score.metadata) == (
        "long_enough",
        True,
        {"result": "abcd", "minimum": 3},
    )
    assert score.metrics == [accuracy(), mean()]
    assert score.metrics[1]([True, False]) == 0.5
    assert copy.__name__ == "long"


@pytest.mark.parametrize(
    "builtin", [exact_match, numeric_match, valid_json, python_ast_match, ast_evaluation]
)
def test_builtins_pickle_by_reference(builtin):
    assert pickle.loads(pickle.dumps(builtin)) is builtin
    assert cloudpickle.loads(cloudpickle.dumps(builtin)) is builtin


# --- built-ins: common shape ------------------------------------------------------


@pytest.mark.parametrize(("builtin", "args"), BUILTIN_CALLS)
def test_builtins_are_accuracy_scored_evaluators(builtin, args):
    score = builtin(*args)
    assert isinstance(score, Score)
    assert score.name == builtin.__name__
    assert score.value is True
    assert score.metrics == [accuracy()]


# --- exact_match -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "expected", "match"),
    [
        ("Paris", "Paris", True),
        ("", "", True),
        (42, 42, True),
        (["a", 1], ["a", 1], True),
        (None, None, True),
        ("Paris", "paris", False),
        ("Paris ", "Paris", False),
        (" Paris", "Paris", False),
        ("42", 42, False),
        ("1.0", "1", False),
        ("Paris.", "Paris", False),
        (None, "", False),
    ],
)
def test_exact_match(result, expected, match):
    score = exact_match(result, expected)
    assert score.value is match
    assert score.metadata == {"result": result, "expected": expected}


# --- numeric_match -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ("1,000", 1000),
        ("1000.0", "1000"),
        (" 42 ", 42),
        ("$5", 5),
        ("42", 42),
        (42, 42.0),
        (0.1 + 0.2, 0.3),
        ("-3", -3),
        ("+3", 3),
        ("1e3", 1000),
        ("1E3", "1,000"),
        ("1.5e-3", 0.0015),
        ("1,234,567.89", 1234567.89),
        ("\n1000\t", "1000"),
        ("€5", 5),
        ("£ 5.00", "5"),
        ("5€", 5),
        ("5 €", 5),
        ("-$5", -5),
        ("$-5", -5),
        ("$1,000.50", 1000.5),
        ("50%", 50),
        ("12.5 %", 12.5),
        (".5", 0.5),
        ("5.", 5),
        ("0", "-0"),
        (10**20, "100,000,000,000,000,000,000"),
        (Fraction(1, 2), "0.5"),
        (Decimal("2.50"), "$2.5"),
    ],
)
def test_numeric_match_true(result, expected):
    assert numeric_match(result, expected).value is True
    assert numeric_match(expected, result).value is True


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ("1000", 1001),
        ("1,000", 100),
        ("garbage", 42),
        ("forty-two", 42),
        ("", 0),
        ("   ", 0),
        (None, 0),
        (None, None),
        ("42 apples", 42),
        ("1 2", 12),
        ("1,5", 1.5),  # decimal commas are not thousands separators
        ("1,5", 15),
        ("1,0000", 10000),  # thousands groups have three digits
        ("1.000", 1000),  # a dot is always the decimal point
        ("50%", 0.5),  # the percent sign is dropped, not applied
        ("$5%", 5),
        ("$5$", 5),
        ("--5", 5),
        ("-$-5", 5),
        ("- 5", -5),
        ("0x10", 16),
        ("1_000", 1000),
        ("nan", "nan"),
        (float("nan"), float("nan")),
        ("inf", "inf"),  # strings spell numbers with digits only
        (float("inf"), "inf"),
        (float("inf"), float("-inf")),
        (float("inf"), 1e308),
        (10**400, 10**400),  # too big for a float
        (True, 1),  # booleans are not numbers
        (False, 0),
        ([1], 1),
        ("1e400", "1e400"),  # overflows a float
        (0.3001, 0.3),
    ],
)
def test_numeric_match_false(result, expected):
    assert numeric_match(result, expected).value is False
    assert numeric_match(expected, result).value is False


# Every example of numeric_match's documentation in dotevals 0.23.
@pytest.mark.parametrize(
    ("result", "expected", "match"),
    [
        ("1234", "1,234", True),
        ("1234", "1 234", True),
        ("1234", "1.234e3", True),
        ("42", 42, True),
        ("3.14", 3.14, True),
        ("1,234.56", "1234.56", True),
        ("1 234 567", "1234567", True),
        ("-1,234", "-1234", True),
        ("0.50", "0.5", True),
        (" 42 ", "42", True),
        ("nan", "nan", False),
        ("abc", "123", False),
        ("42.0", "42", True),
        # Spaces as thousands separators, like commas: groups of three, one kind.
        ("1 234.56", "1234.56", True),
        ("-1 234", -1234, True),
        ("$1 000", 1000, True),
        ("1\u00a0234", 1234, True),
        ("1\u202f234\u202f567", 1234567, True),
        ("12 34", 1234, False),
        ("1 2345", 12345, False),
        ("1,234 567", 1234567, False),
        ("1 234,567", 1234567, False),
        ("- 42", -42, False),
    ],
)
def test_numeric_match_documented_examples(result, expected, match):
    assert numeric_match(result, expected).value is match
    assert numeric_match(expected, result).value is match


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (float("inf"), float("inf")),
        (float("-inf"), float("-inf")),
        (Decimal("Infinity"), math.inf),
    ],
)
def test_numeric_match_an_infinity_matches_the_same_infinity(result, expected):
    assert numeric_match(result, expected).value is True
    assert numeric_match(expected, result).value is True


def test_numeric_match_tolerance_is_tiny():
    assert numeric_match(1.0, 1.0 + 1e-12).value is True
    assert numeric_match(1e-12, 0).value is True  # absolute tolerance near zero
    assert numeric_match(1.0, 1.0 + 1e-6).value is False


# --- valid_json -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "valid"),
    [
        ('{"a": 1}', True),
        ("[1, 2, 3]", True),
        ('"text"', True),
        ("3.5", True),
        ("null", True),
        ("true", True),
        ('  {"a": [1, {"b": null}]}\n', True),
        (b'{"a": 1}', True),
        ("", False),
        ("{", False),
        ("{'a': 1}", False),  # single quotes are Python, not JSON
        ('{"a": 1,}', False),
        ('{"a": 1} trailing', False),
        ("NaN", False),
        ('{"a": Infinity}', False),
        ('```json\n{"a": 1}\n```', False),
        ("undefined", False),
        (None, False),
    ],
)
def test_valid_json_without_schema(result, valid):
    score = valid_json(result)
    assert score.value is valid
    assert score.metadata == {"result": result, "schema": None}


@pytest.mark.parametrize(
    ("result", "valid"),
    [
        (42, True),
        (3.5, True),
        ([1, 2], True),
        ({}, True),
        (True, False),  # str(True) is "True", not JSON's "true"
        ({"a": 1}, False),  # str() uses single quotes
        (["a"], False),
        (float("nan"), False),
    ],
)
def test_valid_json_checks_a_non_string_as_its_str(result, valid):
    assert valid_json(result).value is valid


def test_valid_json_checks_a_non_string_against_the_schema():
    assert valid_json(7, {"type": "integer"}).value is True
    assert valid_json(7, {"type": "string"}).value is False


PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    ("result", "valid"),
    [
        ('{"name": "Ada"}', True),
        ('{"name": "Ada", "age": 36}', True),
        ('{"age": 36}', False),
        ('{"name": 1}', False),
        ('{"name": "Ada", "age": -1}', False),
        ('{"name": "Ada", "email": "a@b.c"}', False),
        ('["Ada"]', False),
        ("not json", False),
    ],
)
def test_valid_json_with_schema(result, valid):
    score = valid_json(result, schema=PERSON)
    assert score.value is valid
    assert score.metadata == {"result": result, "schema": PERSON}


def test_valid_json_with_an_invalid_schema_raises():
    import jsonschema

    with pytest.raises(jsonschema.exceptions.SchemaError):
        valid_json("{}", schema={"type": "no-such-type"})


def test_jsonschema_is_a_core_dependency_and_the_extra_an_empty_alias():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(dep.startswith("jsonschema") for dep in project["dependencies"])
    assert project["optional-dependencies"]["jsonschema"] == []


# --- python_ast_match --------------------------------------------------------------


@pytest.mark.parametrize(
    "result",
    [
        "x = 1",
        "",
        "def f(a, b):\n    return a + b\n",
        "import os\nprint(os.sep)",
        "```python\nx = 1\n```",
        "```py\nx = 1\n```",
        "```\nx = 1\n```",
        "  ```python\ndef f():\n    return 1\n```\n",
        "    x = 1\n    y = 2\n",  # uniformly indented snippet
        "x = 1  # a comment",
    ],
)
def test_python_ast_match_valid_python(result):
    assert python_ast_match(result).value is True


@pytest.mark.parametrize(
    "result",
    [
        "def f(:\n    pass",
        "x = = 1",
        "return (",
        "if x:\nprint(x)",
        "x = 1\n  y = 2",
        "print 'hello'",  # Python 2
        "```python\ndef f(:\n```",
        "Here is the code: x = 1",
        "x = '\x00'",
        None,
        42,
    ],
)
def test_python_ast_match_invalid_python(result):
    assert python_ast_match(result).value is False


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ("x=1", "x = 1"),
        ("def f(a,b):\n  return a+b", "def f(a, b):\n    return a + b\n"),
        ("def f(a, b):\n    # add them\n    return a + b  # done\n", "def f(a,b): return a+b"),
        ("x = (1 +\n     2)", "x = 1 + 2"),
        ("s = 'a'", 's = "a"'),
        ("x = [1, 2, 3,]", "x = [\n    1,\n    2,\n    3,\n]"),
        ("x = 1\n\n\n\ny = 2", "x = 1\ny = 2"),
        ("x = 0x10", "x = 16"),  # same constant
        ("```python\ndef f(a, b):\n    return a + b\n```", "def f(a, b): return a + b"),
        ("```\nprint( 'hi' )\n```", "print('hi')"),
    ],
)
def test_python_ast_match_equal_code(result, expected):
    score = python_ast_match(result, expected)
    assert score.value is True
    assert score.metadata == {"result": result, "expected": expected}


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ("x = 1", "x = 2"),
        ("x = 1", "y = 1"),
        ("def f(a, b):\n    return a + b", "def f(a, b):\n    return a - b"),
        ("def f(a, b):\n    return a + b", "def f(b, a):\n    return a + b"),
        ("x = 1\ny = 2", "y = 2\nx = 1"),
        ("x = 1", "x = 1.0"),
        ("x = (1, 2)", "x = [1, 2]"),
        ('def f():\n    """Doc."""\n    return 1', "def f():\n    return 1"),
        ("x = 1", "x = = 1"),  # expected does not parse
        ("x = = 1", "x = = 1"),  # neither parses
        ("x = 1", "```python\nx = 1\n```"),  # expected is not fence-stripped
    ],
)
def test_python_ast_match_different_code(result, expected):
    assert python_ast_match(result, expected).value is False


# --- ast_evaluation: a function call against its schema (BFCL) ----------------------

AREA = {
    "name": "area",
    "parameters": {
        "properties": {
            "shape": {"type": "string"},
            "unit": {"type": "string"},
            "sides": {"type": "array"},
            "options": {"type": "object"},
        },
        "required": ["shape"],
    },
}


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        ({"area": {"shape": "circle"}}, {"shape": "circle"}),
        ({"area": {"shape": "Circle"}}, {"shape": "circle"}),  # strings normalized
        ({"area": {"shape": "right-angled tri_angle."}}, {"shape": "RightAngledTriangle"}),
        ({"area": {"shape": "disc"}}, {"shape": ["circle", "disc"]}),  # alternatives
        ({"area": {"shape": "DISC"}}, {"shape": {"circle", "disc"}}),
        ({"area": {"shape": "circle"}}, {"shape": "circle", "unit": ""}),  # optional, left out
        ({"area": {"shape": "circle"}}, {"shape": "circle", "unit": ["", "cm"]}),
        ({"area": {"shape": "circle", "unit": "CM"}}, {"shape": "circle", "unit": ["", "cm"]}),
        ({"area": {"shape": "square", "sides": [2, 2]}}, {"shape": "square", "sides": [[2, 2]]}),
        (
            {"area": {"shape": "square", "options": {"Fill": "Red"}}},
            {"shape": "square", "options": [{"Fill": "red"}, {"Fill": "blue"}]},
        ),
        ({"area": {"shape": "it's"}}, {"shape": 'it"s'}),
    ],
)
def test_ast_evaluation_matches(call, expected):
    score = ast_evaluation(call, [{"area": expected}], [AREA])
    assert (score.name, score.value, score.metrics) == ("ast_evaluation", True, [accuracy()])
    assert score.metadata == {"result": call, "expected": [{"area": expected}], "schema": [AREA]}
    assert ast_evaluation(call, {"area": expected}, AREA).value is True  # one dict each


class Unserializable:
    pass


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        ({"volume": {"shape": "circle"}}, {"shape": "circle"}),  # another function
        ({"area": {"unit": "cm"}}, {"shape": "circle", "unit": "cm"}),  # required left out
        ({"area": {"shape": "circle"}}, {"shape": "circle", "unit": "cm"}),  # expected one
        ({"area": {"shape": "circle", "unit": "m"}}, {"shape": "circle", "unit": ["", "cm"]}),
        ({"area": {"shape": "circle", "colour": "red"}}, {"shape": "circle"}),  # not in schema
        ({"area": {"shape": "circle", "unit": "cm"}}, {"shape": "circle"}),  # not expected
        ({"area": {"shape": "oval"}}, {"shape": {"circle", "disc"}}),
        ({"area": {"shape": "square", "sides": [2, 3]}}, {"shape": "square", "sides": [[2, 2]]}),
        ({"area": {"shape": Unserializable()}}, {"shape": "circle"}),  # not JSON
        ({"area": {"shape": "circle"}, "volume": {}}, {"shape": "circle"}),  # two calls
        ({}, {"shape": "circle"}),
        ("area(shape='circle')", {"shape": "circle"}),  # not a call as a dict
        (None, {"shape": "circle"}),
        ({"area": "circle"}, {"shape": "circle"}),
    ],
)
def test_ast_evaluation_mismatches(call, expected):
    assert ast_evaluation(call, [{"area": expected}], [AREA]).value is False


def test_ast_evaluation_without_expected_or_schema_is_false():
    call = {"area": {"shape": "circle"}}
    assert ast_evaluation(call, [], [AREA]).value is False
    assert ast_evaluation(call, [{"area": {"shape": "circle"}}], []).value is False
    assert ast_evaluation(call, None, None).value is False


@pytest.mark.parametrize(
    ("expected", "schema", "message"),
    [
        ([{"area": {"shape": "circle"}}], ["area"], "schema must be a dict or a list of dicts"),
        (["area"], [AREA], "expected must be a dict or a list of dicts"),
        ([{"area": "circle"}], [AREA], "expected must map the function's name to its arguments"),
    ],
)
def test_ast_evaluation_rejects_malformed_expectations(expected, schema, message):
    with pytest.raises(TypeError, match=message):
        ast_evaluation({"area": {"shape": "circle"}}, expected, schema)


def test_ast_evaluation_is_importable_from_its_module_and_registered():
    from dotevals.evaluators import registry
    from dotevals.evaluators.ast_evaluation import ast_evaluation as from_module

    assert from_module is ast_evaluation is registry.get("ast_evaluation")
    assert registry.get("python_ast_match") is python_ast_match
