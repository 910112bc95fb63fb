"""What importing dotevals costs: ``dotevals.load`` and the commands load neither pandas
nor jinja2 until they are used, in a fresh process."""

from __future__ import annotations

import subprocess
import sys


def test_importing_dotevals_loads_neither_pandas_nor_jinja2():
    code = (
        "import sys, dotevals, dotevals.plugin, dotevals.cli; dotevals.load; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'pandas', 'jinja2'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout == "[]\n"
