"""The ``dotevals`` command as a program (``python -m dotevals.cli``), on storage filled
through the storage API."""

from __future__ import annotations

import json
import subprocess
import sys


def test_subprocess(listing_url, tmp_path):
    def dotevals(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "dotevals.cli", *argv],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
        )

    listed = dotevals("list", "--storage", listing_url)
    assert listed.returncode == 0, listed.stderr
    assert "gsm8k-baseline" in listed.stdout and "Ephemeral experiments" in listed.stdout

    shown = dotevals("show", "gsm8k-baseline", "--storage", listing_url, "--format", "json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["evaluations"][0]["rows"] == 4

    (tmp_path / ".dotevals").mkdir()
    missing = dotevals("show", "nope")  # the default storage, json://.dotevals in cwd
    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr == (
        "error: experiment 'nope' not found in json://.dotevals (see 'dotevals list')\n"
    )

    datasets = dotevals("datasets", "-v")
    assert datasets.returncode == 0 and "arithmetic" in datasets.stdout
