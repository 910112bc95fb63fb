"""What workers are told to build (``engine.main_fixture_specs``), from real pytest items."""

from __future__ import annotations

import pytest
from pytest_runs import FAST

from dotevals._engine.wire import NO_PARAM
from dotevals._pytest_bridge.fixture_specs import fixture_specs
from dotevals.errors import ConfigurationError

CONFTEST = """
import pytest


@pytest.fixture(scope="session")
def sess():
    return "S"


@pytest.fixture(scope="package")
def pkg():
    return "P"


@pytest.fixture(autouse=True)
def auto():
    return "A"


@pytest.fixture
def shadowed():
    return "conftest"
"""

EVAL = """
import pytest

from dotevals import Score, foreach


@pytest.fixture(scope="module")
def mod(sess):
    return sess + "M"


@pytest.fixture
def shadowed():
    return "module"


@pytest.fixture(params=["small", "large"])
def model(request, mod):
    return request.param


class TestGroup:
    @pytest.fixture(scope="class")
    def klass(self):
        return "K"

    @foreach("n", range(2))
    def eval_in_class(self, n, klass, tmp_path):
        return Score("v", n)


@foreach("n", range(3))
def eval_models(n, model, shadowed, pkg):
    return Score("v", n)


@pytest.mark.parametrize("k", [7])
@foreach("n", range(3))
def eval_direct(n, k, request):
    return Score("v", n)
"""


def collect(pytester: pytest.Pytester, **files: str) -> dict[str, pytest.Item]:
    """Real items of ``files``, collected in-process with only the plugins needed."""
    pytester.makepyfile(**files)
    items, _ = pytester.inline_genitems(*FAST)
    return {item.nodeid: item for item in items}


@pytest.fixture
def items(pytester):
    pytester.makeconftest(CONFTEST)
    return collect(pytester, eval_specs=EVAL)


def test_specs_name_scopes_params_and_scope_keys(items):
    item = items["eval_specs.py::eval_models[small]"]
    specs, builtins = fixture_specs(item)
    assert builtins == []
    assert set(specs) == {"auto", "model", "request", "mod", "sess", "shadowed", "pkg"}
    model = specs["model"]
    assert (model.scope, model.param, model.argnames) == ("function", "small", ("request", "mod"))
    assert model.scope_key == "eval_specs.py::eval_models[small]"
    assert model.func.__name__ == "model"
    assert (specs["mod"].scope, specs["mod"].scope_key) == ("module", "eval_specs.py")
    assert (specs["sess"].scope, specs["sess"].scope_key) == ("session", "")
    assert specs["pkg"].scope == "package"
    assert specs["sess"].param is NO_PARAM
    assert specs["shadowed"].func() == "module"  # the override nearest the item wins
    request = specs["request"]
    assert (request.func, request.nodeid, request.node_name) == (
        None,
        "eval_specs.py::eval_models[small]",
        "eval_models[small]",
    )
    large = fixture_specs(items["eval_specs.py::eval_models[large]"])[0]["model"]
    assert large.param == "large"
    assert large.cache_key != model.cache_key
    assert (
        specs["mod"].cache_key
        == fixture_specs(items["eval_specs.py::eval_models[large]"])[0]["mod"].cache_key
    )


def test_class_scoped_fixtures_and_pytest_builtins(items):
    specs, builtins = fixture_specs(items["eval_specs.py::TestGroup::eval_in_class"])
    assert "tmp_path" in builtins
    assert not set(builtins) & set(specs)
    assert (specs["klass"].scope, specs["klass"].scope_key) == (
        "class",
        "eval_specs.py::TestGroup",
    )


def test_direct_parametrization_travels_as_a_value(items):
    specs, builtins = fixture_specs(items["eval_specs.py::eval_direct[7]"])
    assert "k" in builtins
    assert "k" not in specs
    assert specs["request"].node_name == "eval_direct[7]"


MAIN_ONLY = ("monkeypatch", "capsys", "caplog", "pytestconfig")


def test_main_process_only_fixtures_are_refused_with_what_to_do(pytester):
    source = "from dotevals import Score, foreach\n" + "".join(
        f"""

@foreach("n", range(2))
def eval_{name}(n, {name}):
    return Score("v", n)
"""
        for name in MAIN_ONLY
    )
    items = collect(pytester, eval_main=source)
    for name in MAIN_ONLY:
        item = items[f"eval_main.py::eval_{name}"]
        with pytest.raises(ConfigurationError) as error:
            fixture_specs(item)
        message = str(error.value)
        assert message.startswith(f"{item.nodeid}: fixture {name!r} works on the main process")
        assert "run without --workers" in message


def test_a_fixture_requesting_the_one_it_overrides_is_refused(pytester):
    pytester.makeconftest(
        """
import pytest

@pytest.fixture
def model():
    return "base"
"""
    )
    items = collect(
        pytester,
        eval_override="""
import pytest

from dotevals import Score, foreach


@pytest.fixture
def model(model):
    return model + "!"


@foreach("n", range(2))
def eval_override(n, model):
    return Score("v", n)
""",
    )
    item = items["eval_override.py::eval_override"]
    with pytest.raises(ConfigurationError, match="fixture 'model' requests the fixture it over"):
        fixture_specs(item)
