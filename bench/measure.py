"""Running one measured command: wall time and peak memory of its process tree."""

from __future__ import annotations

import contextlib
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Run:
    """One run of a command."""

    wall: float
    main_peak_mb: float
    workers_peak_mb: float
    stdout: str = ""
    #: CPU seconds of the command and the processes it waited for.
    cpu: float = 0.0
    #: Seconds spent running rows, when the command reports them (see ``evaluation_seconds``).
    rows: float | None = None
    #: Distinct worker processes that scored rows (many-evaluations only).
    worker_processes: int | None = None
    #: Requests the chat server received, and their rate per minute (llm only).
    server_requests: int | None = None
    server_rpm: float | None = None


@dataclass
class Figures:
    """Repeated runs of one variant, one per round: median, min and max of each figure."""

    runs: list[Run] = field(default_factory=list)
    extra: dict[str, float] = field(default_factory=dict)

    def stat(self, name: str) -> dict[str, float] | None:
        values = [getattr(run, name) for run in self.runs]
        return spread(values) if None not in values else None


def spread(values: list[float]) -> dict[str, float]:
    """Median, min and max."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def run_command(argv: list[str], cwd: Path, env: dict[str, str]) -> Run:
    """Run ``argv`` to completion, sampling the RSS of it and its children every 10 ms.

    CPU time is that of the command and every process it waited for (its
    workers), user and system, and that of the processes nobody waits for, read
    as they run: a fork server and the workers it forks (see ``_unwaited``).
    Unlike wall time it barely moves when other work shares the machine.
    """
    full_env = {
        **os.environ,
        **env,
        "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    full_env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure with the bytecode cache, as installed
    cpu_before = _children_cpu()
    start = time.perf_counter()
    process = psutil.Popen(
        argv, cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    peaks = {"main": 0.0, "workers": 0.0}
    unwaited: dict[int, float] = {}  # pid: CPU seconds, as last read
    seen: dict[int, bool] = {}  # pid: whether nobody waits for it (read once per process)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            try:
                peaks["main"] = max(peaks["main"], process.memory_info().rss)
                children = process.children(recursive=True)
                total = 0
                for child in children:
                    with contextlib.suppress(psutil.Error):  # it may have just exited
                        total += child.memory_info().rss
                        if child.pid not in seen:
                            seen[child.pid] = _unwaited(child)
                        if seen[child.pid]:
                            times = child.cpu_times()
                            unwaited[child.pid] = times.user + times.system
                peaks["workers"] = max(peaks["workers"], total)
            except psutil.Error:
                return
            done.wait(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, _ = process.communicate()
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    if process.returncode != 0:
        sys.stderr.write(stdout[-3000:])
        raise RuntimeError(f"benchmark command failed ({process.returncode}): {' '.join(argv)}")
    cpu = _children_cpu() - cpu_before + sum(unwaited.values())
    return Run(wall, peaks["main"] / 2**20, peaks["workers"] / 2**20, stdout, cpu=cpu)


def _unwaited(process: psutil.Process) -> bool:
    """A fork server, or a worker it forked: the main process waits for neither (the
    server leaves after it), so their CPU time never reaches its own."""
    return "multiprocessing.forkserver" in " ".join(process.cmdline())


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def runs_as_json(results: dict[str, dict[str, Figures]]) -> dict[str, Any]:
    """Every run of every variant, so that the budget can be computed again from a file."""
    return {
        workload: {label: [asdict(run) for run in f.runs] for label, f in figures.items()}
        for workload, figures in results.items()
    }


def runs_from_json(data: dict[str, Any]) -> dict[str, dict[str, Figures]]:
    return {
        workload: {label: Figures([Run(**run) for run in runs]) for label, runs in figures.items()}
        for workload, figures in data.items()
    }
