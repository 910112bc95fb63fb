"""The per-worker fixture lifecycle (``dotevals._engine.worker.fixtures``), in-process."""

from __future__ import annotations

import asyncio
from typing import Any

import cloudpickle
import pytest

from dotevals._engine.wire import NO_PARAM, FixtureSpec
from dotevals._engine.worker.fixtures import WorkerFixtures
from dotevals.errors import ConfigurationError, FixtureError


class Fixtures:
    """Fixture functions that log their set-up and teardown to ``events``."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.count = 0

    def generator(self, name: str, fail_teardown: bool = False):
        def fixture(**kwargs: Any):
            self.count += 1
            value = f"{name}{self.count}"
            self.events.append(f"setup {value}")
            yield value
            self.events.append(f"teardown {value}")
            if fail_teardown:
                raise RuntimeError(f"teardown of {value} failed")

        return fixture

    def async_generator(self, name: str):
        async def fixture(**kwargs: Any):
            await asyncio.sleep(0)
            self.events.append(f"setup {name}")
            yield name
            await asyncio.sleep(0)
            self.events.append(f"teardown {name}")

        return fixture


def spec(name: str, func: Any, scope: str = "session", argnames: tuple[str, ...] = (), **kw):
    return FixtureSpec(
        name, func, argnames, scope, kw.pop("scope_key", ""), kw.pop("baseid", ""), **kw
    )


def specs_of(*specs: FixtureSpec) -> dict[str, FixtureSpec]:
    return {s.name: s for s in specs}


def resolve(fixtures: WorkerFixtures, evaluation: str, specs: dict[str, FixtureSpec], *names):
    return fixtures.resolve(evaluation, specs, {}, tuple(names), tuple(specs))


def test_session_and_module_fixtures_are_created_once_across_chunks_and_evaluations():
    log = Fixtures()
    specs = specs_of(
        spec("sess", log.generator("sess")),
        spec("mod", log.generator("mod"), "module", ("sess",), scope_key="eval_a.py"),
    )
    fixtures = WorkerFixtures()
    first = resolve(fixtures, "e1", specs, "mod", "sess")
    again = resolve(fixtures, "e1", specs, "mod", "sess")
    other = resolve(fixtures, "e2", specs, "mod", "sess")
    assert first == again == other == {"mod": "mod2", "sess": "sess1"}
    assert log.events == ["setup sess1", "setup mod2"]
    fixtures.close()
    assert log.events[2:] == ["teardown mod2", "teardown sess1"]


def test_another_module_gets_its_own_module_fixture():
    log = Fixtures()
    func = log.generator("mod")
    fixtures = WorkerFixtures()
    a = resolve(fixtures, "e1", specs_of(spec("mod", func, "module", scope_key="a.py")), "mod")
    b = resolve(fixtures, "e2", specs_of(spec("mod", func, "module", scope_key="b.py")), "mod")
    assert (a, b) == ({"mod": "mod1"}, {"mod": "mod2"})
    assert log.events == ["setup mod1", "setup mod2"]  # both live until the worker exits
    fixtures.close()
    assert log.events[2:] == ["teardown mod2", "teardown mod1"]


def test_function_fixtures_live_for_one_evaluation():
    log = Fixtures()
    specs = specs_of(spec("fn", log.generator("fn"), "function", scope_key="a.py::eval_a"))
    fixtures = WorkerFixtures()
    assert resolve(fixtures, "e1", specs, "fn") == {"fn": "fn1"}
    assert resolve(fixtures, "e1", specs, "fn") == {"fn": "fn1"}  # the next chunk
    assert log.events == ["setup fn1"]
    assert resolve(fixtures, "e2", specs, "fn") == {"fn": "fn2"}
    assert log.events == ["setup fn1", "teardown fn1", "setup fn2"]
    fixtures.close()
    assert log.events[-1] == "teardown fn2"


def test_generator_and_async_fixtures_are_torn_down_in_reverse_order_at_close():
    log = Fixtures()
    specs = specs_of(
        spec("first", log.generator("first")),
        spec("second", log.async_generator("second"), argnames=("first",)),
        spec("third", log.generator("third"), "function", ("second",)),
    )
    fixtures = WorkerFixtures()
    assert resolve(fixtures, "e1", specs, "third") == {"third": "third2"}
    assert log.events == ["setup first1", "setup second", "setup third2"]
    fixtures.close()
    assert log.events[3:] == ["teardown third2", "teardown second", "teardown first1"]


def test_coroutine_fixtures_run_on_the_workers_own_loop():
    async def loop_id() -> int:
        return id(asyncio.get_running_loop())

    specs = specs_of(spec("a", loop_id), spec("b", loop_id, "function"))
    fixtures = WorkerFixtures()
    values = resolve(fixtures, "e1", specs, "a", "b")
    assert values["a"] == values["b"]
    fixtures.close()


def test_every_finalizer_runs_and_the_first_error_is_raised():
    log = Fixtures()
    specs = specs_of(
        spec("a", log.generator("a", fail_teardown=True)),
        spec("b", log.generator("b"), argnames=("a",)),
        spec("c", log.generator("c", fail_teardown=True), argnames=("b",)),
    )
    fixtures = WorkerFixtures()
    resolve(fixtures, "e1", specs, "c")
    with pytest.raises(FixtureError, match="fixture 'c' raised RuntimeError: teardown of c3"):
        fixtures.close()
    assert log.events[3:] == ["teardown c3", "teardown b2", "teardown a1"]
    fixtures.close()  # nothing is torn down twice
    assert len(log.events) == 6


def test_a_failing_function_teardown_still_tears_the_session_down():
    log = Fixtures()
    specs = specs_of(
        spec("sess", log.generator("sess")),
        spec("fn", log.generator("fn", fail_teardown=True), "function"),
    )
    fixtures = WorkerFixtures()
    resolve(fixtures, "e1", specs, "fn", "sess")
    with pytest.raises(FixtureError, match="teardown of fn"):
        fixtures.close()
    assert log.events[-1] == "teardown sess1"


def test_request_param_node_finalizers_and_getfixturevalue():
    log = Fixtures()
    seen: dict[str, Any] = {}

    def model(request):
        seen["fixturename"] = request.fixturename
        seen["scope"] = request.scope
        seen["node"] = (request.node.name, request.node.nodeid)
        seen["other"] = request.getfixturevalue("sess")
        request.addfinalizer(lambda: log.events.append(f"finalize {request.param}"))
        return f"model-{request.param}"

    specs = specs_of(
        spec("sess", log.generator("sess")),
        spec(
            "model",
            model,
            "function",
            ("request",),
            param="small",
            nodeid="eval_a.py::eval_a[small]",
            node_name="eval_a[small]",
        ),
    )
    fixtures = WorkerFixtures()
    assert resolve(fixtures, "e1", specs, "model") == {"model": "model-small"}
    assert seen == {
        "fixturename": "model",
        "scope": "function",
        "node": ("eval_a[small]", "eval_a.py::eval_a[small]"),
        "other": "sess1",
    }
    fixtures.end_evaluation()
    assert log.events == ["setup sess1", "finalize small"]
    fixtures.close()


def test_request_of_a_fixture_that_is_not_parametrized_and_main_process_attributes():
    errors: dict[str, str] = {}

    def plain(request):
        for attribute in ("param", "config"):
            try:
                getattr(request, attribute)
            except AttributeError as exc:
                errors[attribute] = str(exc)
        return 1

    fixtures = WorkerFixtures()
    resolve(fixtures, "e1", specs_of(spec("plain", plain, argnames=("request",))), "plain")
    assert errors["param"] == "fixture 'plain' is not parametrized"
    assert errors["config"].startswith("request.config is not available in a worker process")
    assert spec("x", plain).param is NO_PARAM


class Elementwise:
    """An array-like parameter: ``==`` compares element by element and gives a list."""

    def __init__(self, *values: int):
        self.values = list(values)

    def __eq__(self, other: object) -> Any:  # type: ignore[override]
        return [value == other for value in self.values]

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Elementwise{tuple(self.values)}"


def test_an_array_like_param_is_a_param_and_a_pickled_spec_without_one_has_none():
    def model(request):
        return request.param

    array = Elementwise(1, 2)
    fixtures = WorkerFixtures()
    parametrized = specs_of(spec("model", model, argnames=("request",), param=array))
    assert resolve(fixtures, "e1", parametrized, "model") == {"model": array}

    def plain(request):
        return hasattr(request, "param")

    sent = cloudpickle.loads(cloudpickle.dumps(spec("plain", plain, argnames=("request",))))
    assert sent.param is NO_PARAM
    assert resolve(fixtures, "e2", specs_of(sent), "plain") == {"plain": False}
    fixtures.close()


def test_main_process_values_are_used_and_parametrized_specs_are_cached_apart():
    calls = []

    def model(request):
        calls.append(request.param)
        return request.param

    fixtures = WorkerFixtures()
    small = specs_of(spec("model", model, "module", ("request",), param="s"))
    large = specs_of(spec("model", model, "module", ("request",), param="l"))
    assert fixtures.resolve("e1", small, {"tmp": "/t"}, ("model", "tmp"), ("model",)) == {
        "model": "s",
        "tmp": "/t",
    }
    assert resolve(fixtures, "e2", large, "model") == {"model": "l"}
    assert resolve(fixtures, "e3", small, "model") == {"model": "s"}
    assert calls == ["s", "l"]


def test_fixture_errors_are_clear():
    def no_yield():
        return
        yield  # pragma: no cover

    def twice():
        yield 1
        yield 2

    fixtures = WorkerFixtures()
    with pytest.raises(ConfigurationError, match="fixture 'empty' did not yield a value"):
        resolve(fixtures, "e1", specs_of(spec("empty", no_yield)), "empty")
    with pytest.raises(ConfigurationError, match="fixture 'missing' is not available"):
        resolve(fixtures, "e1", {}, "missing")
    resolve(fixtures, "e1", specs_of(spec("twice", twice)), "twice")
    with pytest.raises(ConfigurationError, match="fixture 'twice' yielded more than once"):
        fixtures.close()


def test_autouse_fixtures_in_the_closure_are_created_though_not_passed():
    log = Fixtures()
    specs = specs_of(spec("auto", log.generator("auto")), spec("used", lambda: "u"))
    fixtures = WorkerFixtures()
    assert fixtures.resolve("e1", specs, {}, ("used",), ("auto", "used")) == {"used": "u"}
    assert log.events == ["setup auto1"]
    fixtures.close()
