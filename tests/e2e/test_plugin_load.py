"""What the plugin costs a pytest session: nothing of dotevals' engine, storage or
their libraries is imported until collection finds an evaluation, and pytest does
not rewrite the asserts of dotevals' modules.

Each session runs in a subprocess (a fresh ``sys.modules``); a conftest writes
down, when the session finishes, the modules it ended with.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from pytest_runs import FAST, run_pytest

#: Libraries only an evaluation run needs.
HEAVY = {"loky", "cloudpickle", "tenacity", "tornado", "jinja2", "psutil", "greenlet", "tqdm"}
#: The dotevals modules every pytest session loads: the plugin and what its hooks need.
PLUGIN_MODULES = {
    "dotevals",
    "dotevals.errors",
    "dotevals.plugin",
    "dotevals.options",
    "dotevals._util",
    "dotevals._util.lazy",
    "dotevals._util.registry",
    "dotevals._pytest_bridge",
    "dotevals._pytest_bridge.internals",
    "dotevals.providers",
}

MODULES_CONFTEST = """
import json
import sys
from pathlib import Path



def pytest_sessionfinish(session):
    loaded = sorted(sys.modules)
    rewritten = sorted(  # the rewriter imports its helpers into each module it rewrites
        name
        for name, module in sys.modules.items()
        if name.split(".")[0] == "dotevals" and "@pytest_ar" in vars(module)
    )
    Path(__file__).with_name("modules.json").write_text(
        json.dumps({"loaded": loaded, "rewritten": rewritten})
    )
"""

EVAL_FILE = """
from dotevals import Score, foreach


@foreach("n", range(2))
def eval_two(n):
    return Score("ok", n >= 0)
"""


def session_modules(pytester: pytest.Pytester, *args: str) -> dict[str, list[str]]:
    pytester.makeconftest(MODULES_CONFTEST)
    result = run_pytest(pytester, *args)
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    return json.loads((pytester.path / "modules.json").read_text())


def top_level(modules: list[str], wanted: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules} & wanted


def python_output(code: str) -> list[str]:
    """The words ``python -c code`` prints, in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout.split()


def test_importing_the_plugin_imports_no_engine_storage_or_heavy_library():
    modules = python_output("import sys, dotevals.plugin; print(' '.join(sorted(sys.modules)))")
    assert top_level(modules, HEAVY) == set()
    assert {m for m in modules if m.split(".")[0] == "dotevals"} == {"dotevals", "dotevals.plugin"}


def test_a_session_without_evaluations_loads_only_the_plugin(pytester: pytest.Pytester):
    pytester.makepyfile(test_one="def test_one():\n    assert 1 + 1 == 2\n")
    modules = session_modules(pytester)["loaded"]
    assert top_level(modules, HEAVY | {"asyncio"}) == set()
    assert {m for m in modules if m.split(".")[0] == "dotevals"} == PLUGIN_MODULES


def test_a_bad_option_is_only_checked_once_an_evaluation_is_collected(
    pytester: pytest.Pytester,
):
    pytester.makepyfile(test_one="def test_one():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest_subprocess(*FAST, "--workers", "lots", timeout=120)
    result.assert_outcomes(passed=1)
    pytester.makepyfile(eval_two=EVAL_FILE)
    result = pytester.runpytest_subprocess(*FAST, "--workers", "lots", timeout=120)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: workers must be a whole number >= 1 or 'auto'*"])


def test_pytest_rewrites_no_module_of_dotevals(
    pytester: pytest.Pytester,
):
    pytester.makepyfile(eval_two=EVAL_FILE)
    store = f"json://{pytester.path / 'store'}"
    modules = session_modules(pytester, "--storage", store)
    assert "dotevals.runners" in modules["loaded"]  # the evaluation did run
    assert modules["rewritten"] == []


def test_dotevals_foreach_is_the_decorator_whichever_is_imported_first():
    printed = python_output(
        "import dotevals.foreach, dotevals\n"
        "from dotevals import ForEach, foreach\n"
        "print(isinstance(foreach, ForEach), dotevals.foreach is foreach)"
    )
    assert printed == ["True", "True"]


def test_an_inline_sync_evaluation_run_imports_no_pool_retry_event_loop_or_report_library(
    pytester: pytest.Pytester,
):
    pytester.makepyfile(eval_two=EVAL_FILE)
    store = f"json://{pytester.path / 'store'}"
    modules = session_modules(pytester, "--storage", store)["loaded"]
    assert "dotevals.runners" in modules  # the evaluation did run
    unused = {"loky", "cloudpickle", "psutil", "tqdm", "jinja2", "tenacity", "tornado", "asyncio"}
    assert top_level(modules, unused) == set()


def test_the_llm_fixture_is_there_without_importing_the_provider_or_the_sdk(
    pytester: pytest.Pytester,
):
    pytester.makepyfile(test_one="def test_one():\n    assert 1 + 1 == 2\n")
    result = run_pytest(pytester, "--fixtures")
    result.stdout.fnmatch_lines(["llm ?session scope? -- *", "*The model of ``--model``*"])
    pytester.makepyfile(eval_two=EVAL_FILE)
    store = f"json://{pytester.path / 'store'}"
    modules = session_modules(pytester, "--storage", store)["loaded"]
    assert "dotevals.runners" in modules  # the evaluation did run
    assert not {"openai", "httpx2", "aiolimiter", "sqlite3"} & {m.split(".")[0] for m in modules}
    assert "dotevals.llm.openai" not in modules and "dotevals.llm.cache" not in modules
