"""Stores and commands shared with dotevals 0.23, through the ``dotevals`` command in this
process: its folders are listed and shown, a storage without a scheme is JSON, and short
names select evaluations."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cli_runs import run_cli

from dotevals.storage import get_storage
from dotevals.storage.json import JSONStorage

STORE_023 = Path(__file__).parents[1] / "data" / "dotevals-0.23"


# CLI ----------------------------------------------------------------------------------
def test_datasets_takes_short_name_flag(capsys: pytest.CaptureFixture[str]):
    code, out, _ = run_cli(capsys, "datasets", "-n", "arith")
    assert code == 0 and "arithmetic" in out
    code, out, _ = run_cli(capsys, "datasets", "-n", "nothing-like-it")
    assert code == 0 and "No datasets matching 'nothing-like-it'." in out


def test_storage_without_scheme_is_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    shutil.copytree(STORE_023, tmp_path / "store")
    storage = get_storage(str(tmp_path / "store"))
    assert isinstance(storage, JSONStorage) and storage.url == f"json://{tmp_path / 'store'}"
    code, out, _ = run_cli(capsys, "list", "--storage", str(tmp_path / "store"))
    assert code == 0 and "baseline" in out and "partial" in out
    code, _, err = run_cli(capsys, "list", "--storage", "nope://x")
    assert code == 1 and err.startswith("error: unknown storage 'nope://x'")


# 0.23 folders -------------------------------------------------------------------------
def test_023_folder_is_listed_and_shown(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    shutil.copytree(STORE_023, tmp_path / "store")
    url = f"json://{tmp_path / 'store'}"
    code, out, _ = run_cli(capsys, "list", "--storage", url)
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()[4:6]] == ["baseline", "partial"]
    code, out, _ = run_cli(capsys, "show", "baseline", "--storage", url, "--format", "json")
    report = json.loads(out)
    evaluations = {e["name"]: e for e in report["evaluations"]}
    assert set(evaluations) == {
        "eval_basic_math[None-None]",
        "eval_by_model[None-None-small]",
        "eval_by_model[None-None-big/v2]",
    }
    math = evaluations["eval_basic_math[None-None]"]
    assert (math["status"], math["rows"], math["errors"]) == ("completed", 3, 0)
    assert math["metrics"] == {"exact_match": {"accuracy": pytest.approx(2 / 3)}}
    assert evaluations["eval_by_model[None-None-small]"]["errors"] == 1
    code, out, _ = run_cli(
        capsys, "show", "baseline", "--storage", url, "--evaluation", "eval_by_model[small]"
    )
    assert code == 0 and "eval_by_model[None-None-small]" in out and "big" not in out


def test_evaluation_option_takes_unambiguous_short_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    storage = get_storage(f"json://{tmp_path}")
    storage.create_experiment("e")
    from dotevals.storage import EvaluationInfo

    for name in ("a/eval_x.py::eval_model", "b/eval_x.py::eval_model", "eval_y.py::eval_only"):
        storage.save_evaluation("e", EvaluationInfo(name))
    url = f"json://{tmp_path}"
    code, out, _ = run_cli(capsys, "show", "e", "--storage", url, "--evaluation", "eval_only")
    assert code == 0 and "eval_y.py::eval_only" in out and "eval_model" not in out
    code, _, err = run_cli(capsys, "show", "e", "--storage", url, "--evaluation", "eval_model")
    assert code == 1
    assert err.strip() == (
        "error: evaluation 'eval_model' is ambiguous in experiment 'e': give one of "
        "'a/eval_x.py::eval_model', 'b/eval_x.py::eval_model'"
    )
