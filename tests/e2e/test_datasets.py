"""The built-in ``arithmetic`` dataset gives the same rows in every process."""

from __future__ import annotations

import subprocess
import sys

from dotevals.datasets.arithmetic import Arithmetic


def test_arithmetic_is_deterministic_across_processes():
    code = "from dotevals.datasets.arithmetic import Arithmetic; print(list(Arithmetic('test')))"
    runs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        for _ in range(2)
    ]
    assert runs[0].stdout == runs[1].stdout == f"{list(Arithmetic('test'))}\n"
    assert list(Arithmetic("test")) == list(Arithmetic("test"))
