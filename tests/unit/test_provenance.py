"""The dataset fingerprint an evaluation stores: what it digests, and when two runs agree."""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
import sys
import types
from pathlib import Path

import pytest

import dotevals
from dotevals import Score, foreach
from dotevals.storage import get_storage, provenance
from dotevals.storage.provenance import Fingerprint


def test_the_fingerprint_is_blake2b_of_each_rows_repr_and_a_nul_byte():
    rows = [{"n": n, "text": "é\ud800"} for n in range(2 * Fingerprint.BATCH + 3)] + ["", {}]
    fingerprint = Fingerprint()
    for row in rows:
        fingerprint.add(row)
    expected = hashlib.blake2b(digest_size=16)
    for row in rows:
        expected.update(repr(row).encode("utf-8", "backslashreplace") + b"\0")
    assert fingerprint.hexdigest() == expected.hexdigest()
    assert fingerprint.read == len(rows)
    assert Fingerprint().hexdigest() == hashlib.blake2b(digest_size=16).hexdigest()


def stored_fingerprint(tmp_path: Path, experiment: str, rows: list[int]) -> tuple[str, int]:
    @foreach("n", rows)
    def eval_rows(n):
        return Score("n", n)

    url = f"json://{tmp_path}"
    dotevals.run(eval_rows, experiment=experiment, storage=url, progress=False)
    storage = get_storage(url)
    [name] = storage.list_evaluations(experiment)
    info = storage.evaluation_info(experiment, name)
    assert info is not None
    return info.metadata["dataset_fingerprint"], info.metadata["dataset_rows_read"]


def test_runs_over_equal_rows_store_equal_fingerprints_and_others_differ(tmp_path):
    first = stored_fingerprint(tmp_path, "a", list(range(1500)))
    assert first[1] == 1500
    assert stored_fingerprint(tmp_path, "b", list(range(1500))) == first
    reordered = stored_fingerprint(tmp_path, "c", [*range(1, 1500), 0])
    assert reordered[0] != first[0]


def test_versions_are_pythons_and_those_of_the_packages_installed(monkeypatch):
    engine = types.ModuleType("dotevals_test_engine")
    engine.__version__ = "9.9"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, engine.__name__, engine)
    packages = {
        "pytest": "pytest",
        "cloudpickle": "cloudpickle",
        "test-engine": engine.__name__,
        "not-installed": "dotevals_test_no_such_module",
    }
    monkeypatch.setattr(provenance, "PACKAGES", packages)
    assert provenance.versions.__wrapped__() == {
        "python": platform.python_version(),
        "pytest": pytest.__version__,
        "cloudpickle": importlib.metadata.version("cloudpickle"),
        "test-engine": "9.9",  # as the imported module states it
    }
