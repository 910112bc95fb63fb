"""Pure-Python CPU work of a known duration, shared by every benchmark workload.

``burn(iterations)`` loops; ``calibrate()`` finds how many iterations take a
given time on this machine, so workloads ask for microseconds, not loops.
"""

from __future__ import annotations

import time


def burn(iterations: int) -> int:
    total = 0
    for i in range(iterations):
        total += i * i
    return total


def calibrate(seconds: float = 0.2) -> float:
    """Iterations of ``burn`` per microsecond (best of five measurements)."""
    best = float("inf")
    iterations = 200_000
    for _ in range(5):
        start = time.perf_counter()
        burn(iterations)
        best = min(best, time.perf_counter() - start)
    return iterations / (best * 1e6)
