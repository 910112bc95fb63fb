"""Evaluators and metrics by name: the registries and the plugins behind them, in this
process.

Plugins are real distributions written by ``plugin_dists.install`` into a directory
put on ``sys.path``, where ``importlib.metadata`` finds them."""

from __future__ import annotations

import json
import sys
import warnings

import pytest
from plugin_dists import BROKEN_ENTRY_POINTS, install

import dotevals.evaluators
import dotevals.metrics
from dotevals.evaluators import exact_match
from dotevals.metrics import Metric, accuracy, get_metric, mean, metric
from dotevals.models import Score


@pytest.fixture
def fresh(monkeypatch):
    """The registries as in a new process: built-ins only, no entry point looked at."""
    with dotevals.evaluators.registry.isolated(), dotevals.metrics._factories.isolated():
        yield


@pytest.fixture
def plugin(tmp_path, monkeypatch, fresh) -> str:
    package = install(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return package


# --- built-in registries --------------------------------------------------------------


def test_metrics_made_by_a_factory_carry_a_dunder_name():
    assert accuracy().__name__ == "accuracy"
    assert mean().__name__ == "mean"
    assert exact_match("a", "a").metrics[0].__name__ == "accuracy"


def test_evaluator_registry_holds_the_builtins(fresh):
    registry = dotevals.evaluators.registry
    for name in ("exact_match", "numeric_match", "valid_json", "ast_evaluation"):
        assert registry.get(name) is getattr(dotevals.evaluators, name)
        assert name in registry
    assert registry.get("no_such_evaluator") is None
    assert "no_such_evaluator" not in registry


def test_evaluator_registry_register_adds_an_evaluator(fresh):
    @dotevals.evaluators.evaluator(metrics=accuracy())
    def shouts(result):
        return result.isupper()

    dotevals.evaluators.registry.register("shouts", shouts)
    assert dotevals.evaluators.registry.get("shouts") is shouts
    assert "shouts" in dotevals.evaluators.registry.list_evaluators()
    assert dotevals.evaluators.shouts("HI").value is True


def test_metric_registry_maps_names_to_metrics(fresh):
    registry = dotevals.metrics.registry
    assert "accuracy" in registry and "mean" in registry
    assert isinstance(registry["accuracy"], Metric)
    assert registry["accuracy"]([True, False, True, True]) == 0.75
    assert "no_such_metric" not in registry
    assert registry.get("no_such_metric") is None


def test_metric_registry_is_a_dict_that_takes_metrics_by_assignment(fresh):
    registry = dotevals.metrics.registry
    assert isinstance(registry, dict)

    def share_of_twos(values):
        return sum(1 for v in values if v == 2) / len(values)

    registry["share_of_twos"] = share_of_twos
    try:
        assert registry["share_of_twos"] is share_of_twos
        assert "share_of_twos" in registry and "share_of_twos" in list(registry.keys())
        assert dict(registry)["share_of_twos"] is share_of_twos
        assert dict(registry)["accuracy"] == accuracy()
        read_back = Score.from_dict({"name": "n", "value": 2, "metrics": ["share_of_twos"]})
        (made,) = read_back.metrics
        assert (made.name, made([2, 1, 2, 2])) == ("share_of_twos", 0.75)
    finally:
        del registry["share_of_twos"]
    assert "share_of_twos" not in registry
    assert get_metric("share_of_twos") is None


def test_metric_registry_gains_every_metric_factory(fresh):
    @metric
    def error_rate():
        def compute(values):
            return 1 - sum(1 for v in values if v) / len(values) if values else 0.0

        return compute

    @metric
    def above(threshold):
        return lambda values: sum(1 for v in values if v > threshold) / len(values)

    registry = dotevals.metrics.registry
    assert "error_rate" in registry and "above" not in registry  # no metric without arguments
    assert registry["error_rate"]([True, False]) == 0.5
    assert {"accuracy", "mean", "error_rate"} <= set(registry.keys())
    assert "above" not in set(registry.keys()) and registry.get("above") is None
    assert set(dict(registry)) == set(registry.keys())
    with pytest.raises(TypeError, match=r"metric 'above' needs arguments: call its factory"):
        registry["above"]


# --- plugins ----------------------------------------------------------------------------


def test_plugin_evaluator_and_metric_import_like_builtins(plugin):
    from dotevals.evaluators import fuzzy_match
    from dotevals.metrics import harmonic_mean, weighted

    score = fuzzy_match("colour", "color", name="spelling")
    assert isinstance(score, Score)
    assert (score.name, score.value) == ("spelling", True)
    assert score.metadata == {"result": "colour", "expected": "color", "threshold": 0.8}
    assert fuzzy_match("cat", "dog").value is False
    assert fuzzy_match.__module__ == f"{plugin}.evaluators"

    assert harmonic_mean().__name__ == "harmonic_mean"
    assert harmonic_mean()([1, 2, 4]) == pytest.approx(12 / 7)
    assert weighted(2.0)([True, False]) == 1.0


def test_registries_list_plugins(plugin):
    assert "fuzzy_match" in dotevals.evaluators.registry.list_evaluators()
    assert dotevals.evaluators.registry.get("fuzzy_match").__module__ == f"{plugin}.evaluators"
    names = set(dotevals.metrics.registry)
    assert {"accuracy", "harmonic_mean", "weighted"} <= names
    assert dotevals.metrics.registry["harmonic_mean"]([2, 2]) == 2.0


def test_unknown_names_are_attribute_errors_naming_the_group(plugin):
    with pytest.raises(AttributeError) as raised:
        dotevals.evaluators.fuzzy_matcher  # noqa: B018
    message = str(raised.value)
    assert message.startswith("no evaluator named 'fuzzy_matcher'")
    assert "entry point in the 'dotevals.evaluators' group" in message
    assert "fuzzy_match" in message  # the known names

    with pytest.raises(ImportError, match="cannot import name 'harmonic'"):
        from dotevals.metrics import harmonic  # noqa: F401
    with pytest.raises(AttributeError, match="'dotevals.metrics' group"):
        dotevals.metrics.harmonic  # noqa: B018


def test_a_broken_entry_point_warns_once_and_the_others_still_load(tmp_path, monkeypatch, fresh):
    install(tmp_path)
    install(tmp_path, BROKEN_ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(tmp_path))

    with (
        pytest.warns(UserWarning, match=r"cannot load evaluator 'broken_eval'") as caught,
        pytest.raises(AttributeError, match="no evaluator named 'broken_eval'"),
    ):
        dotevals.evaluators.broken_eval  # noqa: B018
    assert len(caught) == 1
    assert "ModuleNotFoundError" in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning
        assert "fuzzy_match" in dotevals.evaluators.registry.list_evaluators()

    with pytest.warns(UserWarning, match=r"cannot load metric 'broken_metric'"):
        assert "harmonic_mean" in set(dotevals.metrics.registry)


def test_plugin_metrics_are_read_back_by_name_and_arguments(plugin):
    from dotevals.metrics import harmonic_mean, weighted

    stored = Score("length", 4, [harmonic_mean(), weighted(0.5), accuracy()]).to_dict()
    assert stored["metrics"] == [
        "harmonic_mean",
        {"name": "weighted_accuracy", "args": [0.5], "kwargs": {}},
        "accuracy",
    ]
    assert json.loads(json.dumps(stored)) == stored

    # As in a process that has not imported the plugin: found through its entry points,
    # including "weighted_accuracy", whose entry point is named "weighted".
    del sys.modules[f"{plugin}.metrics"]
    for name in ("harmonic_mean", "weighted_accuracy", "weighted"):
        dotevals.metrics._factories.unregister(name)
    metrics = Score.from_dict(stored).metrics
    assert [m.name for m in metrics] == ["harmonic_mean", "weighted_accuracy", "accuracy"]
    assert metrics[0]([1, 2, 4]) == pytest.approx(12 / 7)
    assert metrics[1]([True, True]) == 0.5
