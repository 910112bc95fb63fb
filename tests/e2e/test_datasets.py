"""Registered datasets: the registry, entry-point discovery and the built-in ``arithmetic``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dotevals.datasets import registry
from dotevals.datasets.arithmetic import Arithmetic


@pytest.fixture(autouse=True)
def fresh_registry():
    """Each test starts from a registry that has not scanned anything yet."""
    registry._reset()
    yield
    registry._reset()


def test_arithmetic_is_deterministic_across_processes():
    code = "from dotevals.datasets.arithmetic import Arithmetic; print(list(Arithmetic('test')))"
    runs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        for _ in range(2)
    ]
    assert runs[0].stdout == runs[1].stdout == f"{list(Arithmetic('test'))}\n"
    assert list(Arithmetic("test")) == list(Arithmetic("test"))
