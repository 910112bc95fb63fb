"""The ``dotevals`` command called in this process, its output taken from ``capsys``."""

from __future__ import annotations

import pytest

from dotevals.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``dotevals *argv``: its exit code and what it wrote to stdout and stderr."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def cli_output(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """What ``dotevals *argv`` wrote to stdout; it must succeed and write nothing to stderr."""
    code, out, err = run_cli(capsys, *argv)
    assert (code, err) == (0, ""), err
    return out
