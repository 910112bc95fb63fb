"""Each use of pytest's private API (``dotevals._pytest_bridge.internals``) on real
pytest objects: CI runs this on the oldest and the newest supported pytest."""

from __future__ import annotations

import pytest

from dotevals._pytest_bridge import internals

MODULE = """
import pytest

@pytest.fixture(autouse=True)
def auto():
    return "auto"

@pytest.fixture
def base():
    return "base"

@pytest.fixture
def top(base):
    yield base + "+top"

@pytest.fixture(scope="module", params=[1, 2])
def wide(request):
    return request.param

def test_one(top, wide):
    pass

@pytest.mark.parametrize("x", [1, 2])
def test_two(x):
    pass

def helper(x):
    pass
"""


@pytest.fixture
def items(pytester: pytest.Pytester) -> list[pytest.Item]:
    return pytester.getitems(MODULE)


def test_rewriting_of_a_package_is_turned_off(pytester: pytest.Pytester):
    config = pytester.parseconfigure()
    hook = config.pluginmanager.rewrite_hook
    hook.mark_rewrite("some_package_of_ours")
    assert "some_package_of_ours" in hook._must_rewrite
    internals.stop_rewriting(config.pluginmanager, "some_package_of_ours")
    assert "some_package_of_ours" not in hook._must_rewrite


def test_python_files_are_told_by_the_ini_patterns(pytester: pytest.Pytester):
    config = pytester.parseconfigure()
    assert internals.is_python_file(pytester.path / "test_x.py", config)
    assert not internals.is_python_file(pytester.path / "eval_x.py", config)


def test_a_function_is_made_into_items_as_a_test_would_be(pytester: pytest.Pytester):
    module = pytester.getmodulecol(MODULE)
    made = internals.generate_functions(module, "test_two", module.obj.test_two)
    assert [item.name for item in made or []] == ["test_two[1]", "test_two[2]"]
    assert internals.generate_functions(module.session, "test_two", module.obj.test_two) is None


def test_a_config_is_made_configured_and_unconfigured(pytester: pytest.Pytester):
    config = internals.new_config([str(pytester.path), "-p", "no:cacheprovider"])
    internals.configure(config)
    seen = []
    config.add_cleanup(lambda: seen.append("cleaned up"))
    internals.unconfigure(config)
    assert seen == ["cleaned up"]


def test_the_fixtures_an_item_needs(items: list[pytest.Item]):
    item = items[0]
    assert {"auto", "base", "top", "wide", "request"} <= set(internals.fixture_closure(item))
    definitions = internals.fixtures_by_name(item)
    assert definitions["top"][-1].argnames == ("base",)
    assert internals.higher_scoped_params(item) == (("wide", "1"),)


def test_an_item_set_up_taken_off_the_stack_and_its_fixture_state_moved(
    items: list[pytest.Item],
):
    item = items[0]
    state = internals.setup_state(item.session)
    item.ihook.pytest_runtest_setup(item=item)
    assert item.funcargs["top"] == "base+top"  # type: ignore[attr-defined]
    request = item._request  # type: ignore[attr-defined]
    assert internals.item_of_request(request) is item
    definitions = {fd.argname: fd for fd in internals.function_fixturedefs(item)}
    assert {"auto", "base", "top"} <= set(definitions)
    kept = internals.take_state(definitions["top"])
    assert kept[0][0] == "base+top" and definitions["top"].cached_result is None
    internals.put_state(definitions["top"], kept)
    assert definitions["top"].cached_result[0] == "base+top"
    finalizers = internals.pop_from_stack(state, item)
    assert isinstance(finalizers, list)
    state.teardown_exact(None)


def test_a_missing_fixture_is_pytests_own_error_listing_those_there_are(
    items: list[pytest.Item],
):
    with pytest.raises(LookupError) as raised:
        raise internals.missing_fixture(items[0], "nowhere")
    lines = str(items[0].repr_failure(raised)).splitlines()
    assert "E       fixture 'nowhere' not found" in lines
    available = next(line for line in lines if "available fixtures:" in line)
    assert {"auto", "base", "top", "wide", "tmp_path"} <= set(available.split(": ")[1].split(", "))


def test_setting_up_creates_only_the_fixtures_named(items: list[pytest.Item]):
    item = items[0]
    with internals.creating_only(item, ["base"]):
        item.ihook.pytest_runtest_setup(item=item)
    assert set(item.funcargs) == {"base"}  # type: ignore[attr-defined]
    internals.setup_state(item.session).teardown_exact(None)


def test_a_fixture_function_has_a_marker_and_a_plain_one_none(pytester: pytest.Pytester):
    module = pytester.getmodulecol(MODULE)
    assert internals.fixture_marker(module.obj.helper) is None
    marker = internals.fixture_marker(module.obj.base)
    assert marker is not None


def test_skip_at_item_reports_the_skip_at_the_items_location(pytester: pytest.Pytester):
    pytester.makeconftest(
        """
        import pytest
        from dotevals._pytest_bridge import internals

        @pytest.hookimpl(hookwrapper=True)
        def pytest_runtest_call(item):
            outcome = yield
            outcome.force_exception(internals.skip_at_item("the budget is spent"))
        """
    )
    pytester.makepyfile(test_here="def test_one():\n    pass\n")
    result = pytester.runpytest("-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED [1] test_here.py:1: the budget is spent"])
