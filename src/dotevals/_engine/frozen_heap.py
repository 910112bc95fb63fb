"""While rows run, the objects made before them stay out of the collector's scans.

A run makes a few objects per row, so Python's cyclic garbage collector runs
often, and each of its full collections walks every object of the process:
pytest's, every imported module's. :func:`frozen_heap` moves what exists when
an evaluation's rows start into the collector's permanent generation
(:func:`gc.freeze`), so its collections walk only what the run made, and gives
it back when the rows are done. Meanwhile the youngest generation is collected
after every ``YOUNG_THRESHOLD`` new objects rather than Python's 700, since a
row's objects are mostly freed as soon as it is stored, not by the collector.
Evaluations may overlap (async evaluations run together): the heap and the
thresholds are given back when the last one ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["frozen_heap"]

#: Objects made between two collections of the youngest generation while rows run.
YOUNG_THRESHOLD = 10_000

_running = 0
_thresholds: tuple[int, ...] = ()


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Freeze the heap for the rows of one evaluation (nested and overlapping calls too)."""
    global _running, _thresholds
    if _running == 0:
        gc.freeze()
        _thresholds = gc.get_threshold()
        gc.set_threshold(max(YOUNG_THRESHOLD, _thresholds[0]), *_thresholds[1:])
    _running += 1
    try:
        yield
    finally:
        _running -= 1
        if _running == 0:
            gc.set_threshold(*_thresholds)
            gc.unfreeze()
