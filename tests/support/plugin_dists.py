"""A plugin of evaluators and metrics as a real distribution: a package and its
``*.dist-info`` directory (with ``entry_points.txt``) written into a directory that goes
on ``sys.path`` or ``PYTHONPATH``, where ``importlib.metadata`` finds them."""

from __future__ import annotations

import uuid
from pathlib import Path

PLUGIN_EVALUATORS = """
import difflib

from dotevals.evaluators import evaluator
from dotevals.metrics import accuracy


@evaluator(metrics=[accuracy()])
def fuzzy_match(result, expected, threshold=0.8, name=None):
    return difflib.SequenceMatcher(None, result, expected).ratio() >= threshold
"""


PLUGIN_METRICS = """
from dotevals.metrics import metric


@metric
def harmonic_mean():
    def compute(values):
        numbers = [float(v) for v in values]
        if not numbers or 0 in numbers:
            return 0.0
        return len(numbers) / sum(1 / n for n in numbers)

    return compute


@metric
def weighted_accuracy(weight=1.0):
    def compute(values):
        return weight * sum(1 for v in values if v) / len(values) if values else 0.0

    return compute
"""


ENTRY_POINTS = """
[dotevals.evaluators]
fuzzy_match = {package}.evaluators:fuzzy_match

[dotevals.metrics]
harmonic_mean = {package}.metrics:harmonic_mean
weighted = {package}.metrics:weighted_accuracy
"""


BROKEN_ENTRY_POINTS = """
[dotevals.evaluators]
broken_eval = {package}.missing:nothing

[dotevals.metrics]
broken_metric = {package}.missing:nothing
"""


def install(root: Path, entry_points: str = ENTRY_POINTS) -> str:
    """Write a plugin distribution under ``root``; return its (unique) package name."""
    package = f"plugin_{uuid.uuid4().hex[:10]}"
    (root / package).mkdir(parents=True)
    (root / package / "__init__.py").write_text("")
    (root / package / "evaluators.py").write_text(PLUGIN_EVALUATORS)
    (root / package / "metrics.py").write_text(PLUGIN_METRICS)
    info = root / f"{package}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(entry_points.format(package=package))
    return package
