"""Settings and fixtures for the whole test suite.

Hypothesis profiles: ``ci`` (the default) runs a few derandomized examples per
property, so that a run is fast and gives the same verdict every time;
``full`` (``make test-full``, or ``pytest --hypothesis-profile=full``) runs
many random examples to look for new failures.

The fixtures here serve tests in both ``unit/`` and ``e2e/``; the helper
modules the tests import by name are in ``support/`` (on ``sys.path`` through
``pythonpath`` in pyproject.toml).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from chat_server import ChatServer
from hypothesis import HealthCheck, settings
from pytest_runs import FAST
from results_support import write_experiments, write_listing
from stores import KINDS, storage_url

from dotevals.cli import main

_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
settings.register_profile("ci", max_examples=10, derandomize=True, **_COMMON)
settings.register_profile("full", max_examples=200, **_COMMON)
settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _fast_pytester(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """pytest sessions of a test that uses ``pytester`` skip the plugins that only slow
    them down (in-process runs re-import them each time: pytester restores sys.modules
    after a run); set after pytester, which clears PYTEST_ADDOPTS."""
    if "pytester" in request.fixturenames:
        request.getfixturevalue("pytester")
        monkeypatch.setenv("PYTEST_ADDOPTS", " ".join(FAST))


#: The terminal width every test sees, whatever runs it (pytest-xdist's workers set
#: ``COLUMNS`` to 80, a terminal has its own width): wide enough that tables keep
#: their cells whole. Tests of narrower terminals set ``COLUMNS`` themselves.
COLUMNS = "200"


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """``COLUMNS`` is :data:`COLUMNS` for the test and the pytest sessions it starts."""
    monkeypatch.setenv("COLUMNS", COLUMNS)


@pytest.fixture
def url(tmp_path: Path) -> str:
    """An empty JSON storage in the test's own directory."""
    return storage_url("json", tmp_path)


@pytest.fixture(params=KINDS)
def listing_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A storage of each backend in turn holding two named experiments and one ephemeral
    one, written through the storage API (``results_support.write_listing``)."""
    return write_listing(storage_url(request.param, tmp_path))


@pytest.fixture(scope="module")
def json_results_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A JSON storage holding the experiments "a" and "b" that real runs wrote
    (``results_support.write_experiments``), once per test module."""
    return write_experiments(storage_url("json", tmp_path_factory.mktemp("results")))


@pytest.fixture(scope="module")
def report_ab(json_results_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of experiments "a" and "b" of ``json_results_url``."""
    path = tmp_path_factory.mktemp("report") / "report.html"
    assert main(["report", "a", "b", "--storage", json_results_url, "-o", str(path)]) == 0
    return path


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    """A real OpenAI-compatible server on 127.0.0.1 (``chat_server.ChatServer``) that
    counts its requests and answers as planned, for this test alone."""
    with ChatServer() as server:
        yield server
