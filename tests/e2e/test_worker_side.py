"""The worker side of the process pool, imported in a fresh process: what a worker loads."""

from __future__ import annotations

import subprocess
import sys


def test_a_worker_loads_no_storage_backend():
    """Workers encode records but never store them: the backends stay unimported."""
    code = (
        "import sys, dotevals._engine.worker.process\n"
        "print(sorted(m for m in ('sqlite3', 'psutil', 'dotevals.storage.registry') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr
