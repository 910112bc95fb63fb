"""``--profile``: cProfile of the main process on cpu-tiny, the row-recording path."""

from __future__ import annotations

import io
import pstats
import sys
import tempfile
from pathlib import Path

from bench.measure import run_command
from bench.workloads import Workload, command, environment


def profile(workload: Workload, label: str, output: Path, top: int = 20) -> str:
    """Run one variant of ``workload`` under cProfile; its ``top`` functions by own time."""
    variant = next(v for v in workload.variants if v.label == label)
    with tempfile.TemporaryDirectory(prefix="dotevals-bench-") as tmp:
        directory = Path(tmp)
        argv = command(workload, variant, directory)
        assert argv[:3] == [sys.executable, "-m", "pytest"], argv
        argv[1:3] = ["-m", "cProfile", "-o", str(output), "-m", "pytest"]
        run = run_command(argv, directory, environment(variant, None))
    text = io.StringIO()
    stats = pstats.Stats(str(output), stream=text)
    stats.sort_stats("tottime").print_stats(top)
    header = (
        f"cProfile of the main process, {workload.name} {label} "
        f"({run.wall:.2f} s under the profiler; saved in {output})"
    )
    return header + "\n" + text.getvalue().split("\n", 1)[1].strip("\n")
