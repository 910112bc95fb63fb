"""Stores and names shared with dotevals 0.23, in real pytest sessions: its folders are
resumed, plain names are used as file names, and names do not depend on the working
directory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dotevals.storage import get_storage
from dotevals.storage.json import hashed_name

STORE_023 = Path(__file__).parents[1] / "data" / "dotevals-0.23"

# The eval file the stored folder was written from (by dotevals 0.23.0: `pytest
# eval_math.py --experiment baseline`, and `--experiment partial --samples 2`).
EVAL_MATH = """
import pytest
from dotevals import foreach, Result
from dotevals.evaluators import exact_match

math_data = [
    ("What is 2 + 3?", "5"),
    ("What is 10 - 4?", "6"),
    ("What is 3 * 2?", "6"),
]


@foreach("question,answer", math_data)
def eval_basic_math(question, answer):
    if "2 + 3" in question:
        prediction = "5"
    elif "10 - 4" in question:
        prediction = "6"
    else:
        prediction = "7"
    return Result(exact_match(prediction, answer), prompt=question)


@pytest.mark.parametrize("model", ["small", "big/v2"])
@foreach("question,answer", math_data)
def eval_by_model(question, answer, model):
    if "3 * 2" in question and model == "small":
        raise RuntimeError("model unavailable")
    return Result(exact_match(answer, answer), prompt=question)
"""

FAST = ("-p", "no:hypothesispytest", "-p", "no:cacheprovider", "-p", "no:xdist", "--no-progress")


def project_023(root: Path) -> Path:
    """A project with the eval file and the folder dotevals 0.23 wrote for it."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "eval_math.py").write_text(EVAL_MATH)
    shutil.copytree(STORE_023, root / ".dotevals")
    return root / ".dotevals"


def test_pytest_storage_without_scheme(pytester: pytest.Pytester):
    pytester.makepyfile(eval_math=EVAL_MATH)
    result = pytester.runpytest(*FAST, "--experiment", "e", "--storage", "results")
    result.assert_outcomes(passed=3)
    storage = get_storage(f"json://{pytester.path / 'results'}")
    assert len(storage.list_evaluations("e")) == 3


def test_023_folder_is_resumed_in_place(pytester: pytest.Pytester):
    store = project_023(pytester.path)
    before = {p.name: p.read_bytes() for p in (store / "partial").iterdir()}
    result = pytester.runpytest(*FAST, "--experiment", "partial")
    # row 2 of 'small' raises again: 1 of its 3 stored rows errored, and it passes
    result.assert_outcomes(passed=3)
    storage = get_storage(f"json://{store}")
    assert sorted(storage.list_evaluations("partial")) == sorted(
        [
            "eval_basic_math[None-None]",
            "eval_by_model[None-None-small]",
            "eval_by_model[None-None-big/v2]",
        ]
    )
    for name, old in before.items():
        assert (store / "partial" / name).read_bytes().startswith(old)  # nothing lost
    raw_name = "eval_basic_math[None-None].jsonl"
    raw = (store / "partial" / raw_name).read_text().splitlines()
    assert [json.loads(line).get("item_id") for line in raw[1:]] == [0, 1, 2]  # only row 2 ran
    records = storage.load_records("partial", "eval_basic_math[None-None]")
    assert [r.result.scores[0].value for r in records] == [True, True, False]
    assert storage.evaluation_info("partial", "eval_basic_math[None-None]").status == "completed"
    # the summary names each evaluation as the CLI does
    assert "eval_basic_math[None-None]" in result.stdout.str()
    pytester.runpytest(*FAST, "--experiment", "partial").assert_outcomes(passed=3)
    assert len(raw) == len((store / "partial" / raw_name).read_text().splitlines())


# File names ---------------------------------------------------------------------------
def test_plain_experiment_name_is_the_folder_name(pytester: pytest.Pytester):
    pytester.makepyfile(eval_math=EVAL_MATH)
    pytester.runpytest(*FAST, "--experiment", "baseline").assert_outcomes(passed=3)
    assert (
        json.loads((pytester.path / ".dotevals" / "baseline" / "experiment.json").read_text())[
            "name"
        ]
        == "baseline"
    )


def test_experiment_under_its_old_hashed_name_is_found(pytester: pytest.Pytester):
    pytester.makepyfile(eval_math=EVAL_MATH)
    pytester.runpytest(*FAST, "--experiment", "old", "--samples", "1").assert_outcomes(passed=3)
    root = pytester.path / ".dotevals"
    (root / "old").rename(root / hashed_name("old"))  # as stores written before were
    pytester.runpytest(*FAST, "--experiment", "old").assert_outcomes(passed=3)
    assert not (root / "old").exists()
    storage = get_storage(f"json://{root}")
    assert [e.name for e in storage.experiments()] == ["old"]
    for evaluation in storage.list_evaluations("old"):
        assert [r.item_id for r in storage.load_records("old", evaluation)] == [0, 1, 2]
    assert len(list((root / hashed_name("old")).glob("*eval_basic_math*.jsonl"))) == 1


# Names and the working directory ------------------------------------------------------
def test_same_storage_and_key_from_the_parent_directory(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
):
    project = pytester.path / "myproj"
    project.mkdir()
    (project / "eval_math.py").write_text(EVAL_MATH)
    (project / "pytest.ini").write_text("[pytest]\n")  # what pins the project's root
    pytester.runpytest(*FAST, "myproj", "--experiment", "e1", "--samples", "2").assert_outcomes(
        passed=3
    )
    assert not (pytester.path / ".dotevals").exists()
    monkeypatch.chdir(project)
    result = pytester.runpytest(*FAST, "--experiment", "e1")
    result.assert_outcomes(passed=3)  # only row 2 ran: it raises for 'small', 1 of 3 stored
    storage = get_storage(f"json://{project / '.dotevals'}")
    names = storage.list_evaluations("e1")
    assert "eval_math.py::eval_basic_math" in names and len(names) == 3
    assert "eval_math.py::eval_basic_math" in result.stdout.str()  # the summary's name
    assert raw_ids(project / ".dotevals", "e1", "eval_math.py::eval_basic_math") == [0, 1, 2]


def raw_ids(root: Path, experiment: str, evaluation: str) -> list[int]:
    return [r.item_id for r in get_storage(f"json://{root}").iter_records(experiment, evaluation)]


def test_ini_storage_is_taken_from_the_project_root(pytester: pytest.Pytester):
    project = pytester.path / "myproj"
    project.mkdir()
    (project / "eval_math.py").write_text(EVAL_MATH)
    (project / "pytest.ini").write_text("[pytest]\ndotevals_storage = json://results\n")
    pytester.runpytest(*FAST, "myproj", "--experiment", "e1").assert_outcomes(passed=3)
    assert not (pytester.path / "results").exists()
    assert len(get_storage(f"json://{project / 'results'}").list_evaluations("e1")) == 3
