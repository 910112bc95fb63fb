"""Tests of dotevals.providers: model providers of a fake installed distribution, exposed
as pytest fixtures in real pytest sessions."""

from __future__ import annotations

import json
import textwrap

import pytest
from pytest_runs import FAST

from dotevals.providers import (
    load_model_providers,
)

FAKEPROV_MOD = """
    from pathlib import Path

    from dotevals.providers import ModelHandle, ModelProvider

    LOG = Path(__file__).with_name("teardown.log")
    HANDLES = []


    class FakeProvider(ModelProvider):
        def __init__(self):
            self.count = 0

        async def setup(self, resource_spec, **config):
            self.count += 1
            handle = ModelHandle(f"{resource_spec}-{self.count}", {"config": config}, self)
            HANDLES.append(handle)
            return handle

        async def teardown(self, resource_id):
            with LOG.open("a") as f:
                f.write(resource_id + "\\n")


    class NotAProvider:
        pass
"""

CONFTEST = """
    import json
    from pathlib import Path

    from dotevals.providers import register_fixtures


    def pytest_configure(config):
        register_fixtures(config)
        register_fixtures(config)  # idempotent


    def pytest_unconfigure(config):
        # After the session fixtures are torn down: were the handles deactivated?
        import fakeprov_mod

        states = {h.resource_id: h.is_active for h in fakeprov_mod.HANDLES}
        Path(__file__).with_name("handles.json").write_text(json.dumps(states))
"""


def make_fake_distribution(pytester: pytest.Pytester) -> None:
    """A fake installed distribution `fakeprov` declaring two model providers."""
    dist_info = pytester.path / "fakeprov-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeprov\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text(
        "[dotevals.model_providers]\n"
        "fake_llm = fakeprov_mod:FakeProvider\n"
        "broken = no_such_module:X\n"
    )
    pytester.makepyfile(fakeprov_mod=textwrap.dedent(FAKEPROV_MOD))
    pytester.syspathinsert()


@pytest.fixture
def fake_project(pytester: pytest.Pytester) -> pytest.Pytester:
    make_fake_distribution(pytester)
    pytester.makeconftest(textwrap.dedent(CONFTEST))
    return pytester


def test_provider_fixture_yields_an_instance(fake_project: pytest.Pytester) -> None:
    fake_project.makepyfile(
        """
        import asyncio

        from dotevals.providers import ModelHandle
        from fakeprov_mod import FakeProvider


        def test_fake_llm(fake_llm):
            assert type(fake_llm) is FakeProvider
            handle = asyncio.run(fake_llm.setup("m", temperature=0))
            assert isinstance(handle, ModelHandle)
            assert handle.resource_id == "m-1"
            assert handle.model == {"config": {"temperature": 0}}
            assert handle.manager is fake_llm
            assert handle.is_active


        def test_same_instance_across_tests(fake_llm):
            assert fake_llm.count == 1
        """
    )
    result = fake_project.runpytest_subprocess(*FAST, timeout=60)
    result.assert_outcomes(passed=2)


def test_model_providers_fixture(fake_project: pytest.Pytester) -> None:
    fake_project.makepyfile(
        """
        from fakeprov_mod import FakeProvider


        def test_all(model_providers, fake_llm):
            assert set(model_providers) == {"fake_llm"}
            assert model_providers["fake_llm"] is fake_llm
            assert isinstance(fake_llm, FakeProvider)


        def test_all_alone(model_providers):
            assert isinstance(model_providers["fake_llm"], FakeProvider)
        """
    )
    result = fake_project.runpytest_subprocess(*FAST, timeout=60)
    result.assert_outcomes(passed=2)


def test_active_handles_are_torn_down_at_session_end(fake_project: pytest.Pytester) -> None:
    fake_project.makepyfile(
        """
        import asyncio


        def test_handles(fake_llm):
            async def run():
                done = await fake_llm.setup("done")
                await done.teardown()
                await fake_llm.setup("left")
                await fake_llm.setup("also_left")

            asyncio.run(run())


        def test_uses_model_providers(model_providers):
            asyncio.run(model_providers["fake_llm"].setup("via_all"))
        """
    )
    result = fake_project.runpytest_subprocess(*FAST, timeout=60)
    result.assert_outcomes(passed=2)

    log = (fake_project.path / "teardown.log").read_text().splitlines()
    # "done-1" explicitly, then the rest at session end, newest first, each once.
    assert log == ["done-1", "via_all-4", "also_left-3", "left-2"]
    states = json.loads((fake_project.path / "handles.json").read_text())
    assert states == {"done-1": False, "left-2": False, "also_left-3": False, "via_all-4": False}


def test_unused_provider_is_not_instantiated_nor_torn_down(
    fake_project: pytest.Pytester,
) -> None:
    fake_project.makepyfile("def test_nothing():\n    pass\n")
    result = fake_project.runpytest_subprocess(*FAST, timeout=60)
    result.assert_outcomes(passed=1)
    assert not (fake_project.path / "teardown.log").exists()


def test_broken_entry_point_warns_and_session_passes(fake_project: pytest.Pytester) -> None:
    fake_project.makepyfile(
        """
        def test_fake_llm(fake_llm):
            assert fake_llm is not None
        """
    )
    result = fake_project.runpytest_subprocess(*FAST, timeout=60)
    result.assert_outcomes(passed=1, warnings=1)
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "*warnings summary*",
            "*UserWarning: cannot load model provider 'broken' *No module named 'no_such_module'*",
        ]
    )

    # The warning obeys -W like any other: it can be silenced.
    result = fake_project.runpytest_subprocess(
        *FAST, "-W", "ignore:cannot load model provider:UserWarning", timeout=60
    )
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*cannot load*")

    # ...or made an error, which stops pytest with a clean usage error.
    result = fake_project.runpytest_subprocess(*FAST, "-W", "error::UserWarning", timeout=60)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: cannot load model provider 'broken'*"])
    result.stderr.no_fnmatch_line("*INTERNALERROR*")


def test_broken_provider_fixture_is_not_defined(fake_project: pytest.Pytester) -> None:
    fake_project.makepyfile("def test_broken(broken):\n    pass\n")
    result = fake_project.runpytest_subprocess(*FAST, timeout=60)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'broken' not found*"])


def test_load_model_providers(pytester: pytest.Pytester) -> None:
    make_fake_distribution(pytester)
    dist_info = pytester.path / "badprov-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: badprov\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text(
        "[dotevals.model_providers]\nnot_a_provider = fakeprov_mod:NotAProvider\n"
    )

    with pytest.warns(UserWarning) as record:
        providers = load_model_providers()

    import fakeprov_mod

    assert providers["fake_llm"] is fakeprov_mod.FakeProvider
    assert "broken" not in providers
    assert "not_a_provider" not in providers
    messages = sorted(str(w.message) for w in record)
    assert any(m.startswith("cannot load model provider 'broken'") for m in messages)
    assert any(m.startswith("cannot load model provider 'not_a_provider'") for m in messages)
