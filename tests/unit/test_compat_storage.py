"""dotevals 0.23's storage interface (``create_evaluation``, ``add_results``,
``get_results``...) on this project's backends, on a backend written before its
names moved, and on a backend of that interface: real files and databases."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from stores import KINDS, storage_url

import dotevals
from dotevals.errors import (
    EvaluationNotFoundError,
    ExperimentExistsError,
    StorageError,
    StorageIOError,
)
from dotevals.foreach import foreach
from dotevals.metrics import accuracy
from dotevals.models import Evaluation, EvaluationStatus, Record, Result, Score
from dotevals.storage import (
    EvaluationInfo,
    ExperimentInfo,
    Storage,
    get_storage,
    register_storage,
    registry,
)
from dotevals.storage.base import LockOwner
from dotevals.storage.json import JSONStorage


@pytest.fixture(params=KINDS)
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    store = get_storage(storage_url(request.param, tmp_path))
    yield store
    store.close()


def evaluation(name: str = "eval1", **kwargs) -> Evaluation:
    return Evaluation(name, EvaluationStatus.RUNNING, started_at=1_700_000_000.0, **kwargs)


def row(item_id: int, error: str | None = None, value: bool = True) -> Record:
    return Record(Result(Score("match", value, [accuracy()])), item_id, {"q": item_id}, error)


# Experiments ------------------------------------------------------------------------
def test_list_experiments_gives_names_and_experiments_the_infos(storage: Storage):
    storage.create_experiment("exp1")
    storage.create_experiment("exp2", ephemeral=True)
    assert storage.list_experiments() == ["exp1", "exp2"]
    assert "exp1" in storage.list_experiments()
    assert [(e.name, e.ephemeral) for e in storage.experiments()] == [
        ("exp1", False),
        ("exp2", True),
    ]


def test_renaming_onto_an_experiment_raises_experiment_exists(storage: Storage):
    storage.create_experiment("a")
    storage.create_experiment("b")
    with pytest.raises(ExperimentExistsError, match="experiment 'b' already exists"):
        storage.rename_experiment("a", "b")
    assert issubclass(ExperimentExistsError, StorageError)


# Evaluations ------------------------------------------------------------------------
def test_create_evaluation_creates_its_experiment_and_changes_nothing_once_it_exists(
    storage: Storage,
):
    assert storage.list_evaluations("exp") == []
    storage.create_evaluation("exp", evaluation(metadata={"model": "m1"}))
    storage.create_evaluation("exp", evaluation(metadata={"model": "other"}))

    assert storage.list_experiments() == ["exp"]
    assert storage.list_evaluations("exp") == ["eval1"]
    loaded = storage.load_evaluation("exp", "eval1")
    assert loaded == Evaluation(
        "eval1", EvaluationStatus.RUNNING, 1_700_000_000.0, {"model": "m1"}, None
    )
    assert storage.evaluation_info("exp", "eval1").metadata == {"model": "m1"}
    assert storage.load_evaluation("exp", "missing") is None


def test_update_evaluation_status_sets_the_end_time(storage: Storage):
    storage.create_evaluation("exp", evaluation())
    before = time.time()
    storage.update_evaluation_status("exp", "eval1", EvaluationStatus.COMPLETED)
    done = storage.load_evaluation("exp", "eval1")
    assert done.status is EvaluationStatus.COMPLETED and done.completed_at >= before
    assert storage.evaluation_info("exp", "eval1").status == "completed"

    storage.update_evaluation_status("exp", "eval1", EvaluationStatus.RUNNING)
    assert storage.load_evaluation("exp", "eval1").completed_at is None
    with pytest.raises(EvaluationNotFoundError, match="no evaluation 'missing' in experiment"):
        storage.update_evaluation_status("exp", "missing", EvaluationStatus.FAILED)


def test_an_interrupted_evaluation_loads_with_its_status(storage: Storage):
    storage.create_experiment("exp")
    storage.save_evaluation("exp", EvaluationInfo("ev", status="interrupted", ended_at=5.0))
    loaded = storage.load_evaluation("exp", "ev")
    assert loaded.status is EvaluationStatus.INTERRUPTED and loaded.completed_at == 5.0


def test_a_slash_in_a_name_is_stored_as_an_at_sign_unless_that_name_is_stored(
    storage: Storage,
):
    storage.create_evaluation("exp", evaluation("model/v1"))
    assert storage.list_evaluations("exp") == ["model@v1"]
    storage.add_results("exp", "model/v1", [row(0)])
    assert [r.item_id for r in storage.get_results("exp", "model@v1")] == [0]

    storage.save_evaluation("exp", EvaluationInfo("sub/eval_x.py::eval_y"))  # as a run names it
    storage.add_results("exp", "sub/eval_x.py::eval_y", [row(0), row(1)])
    assert len(storage.get_results("exp", "sub/eval_x.py::eval_y")) == 2
    assert storage.load_evaluation("exp", "sub/eval_x.py::eval_y").evaluation_name == (
        "sub/eval_x.py::eval_y"
    )


# Results ----------------------------------------------------------------------------
def test_results_keep_the_newest_record_of_each_row(storage: Storage):
    storage.create_evaluation("exp", evaluation())
    storage.add_results("exp", "eval1", [row(0, error="ValueError: no"), row(1), row(2)])
    storage.add_results("exp", "eval1", [row(0)])

    assert [(r.item_id, r.error) for r in storage.get_results("exp", "eval1")] == [
        (0, None),
        (1, None),
        (2, None),
    ]
    assert storage.completed_items("exp", "eval1") == [0, 1, 2]
    assert storage.get_results("exp", "missing") == []
    assert storage.get_results("missing", "eval1") == []
    with pytest.raises(EvaluationNotFoundError, match="create it first with create_evaluation"):
        storage.add_results("exp", "missing", [row(0)])


def test_removing_error_results_deletes_only_the_failed_records_of_those_rows(
    storage: Storage,
):
    storage.create_evaluation("exp", evaluation())
    rows = [row(i, error="RuntimeError: down" if i % 2 == 0 else None) for i in range(5)]
    storage.add_results("exp", "eval1", rows)
    assert storage.completed_items("exp", "eval1") == [1, 3]

    storage.remove_error_results_batch("exp", "eval1", [0, 1, 2, 99])
    assert [(r.item_id, r.failed) for r in storage.get_results("exp", "eval1")] == [
        (1, False),
        (3, False),
        (4, True),
    ]
    storage.remove_error_result("exp", "eval1", 4)
    assert [r.item_id for r in storage.get_results("exp", "eval1")] == [1, 3]
    storage.remove_error_results_batch("exp", "eval1", [])  # nothing to do


def test_removing_an_error_keeps_the_older_record_of_its_row(tmp_path: Path):
    storage = JSONStorage(str(tmp_path))
    storage.create_evaluation("exp", evaluation())
    storage.add_results("exp", "eval1", [row(0, value=False)])
    storage.add_results("exp", "eval1", [row(0, error="TimeoutError: slow")])

    storage.remove_error_result("exp", "eval1", 0)

    assert [(r.item_id, r.failed) for r in storage.iter_records("exp", "eval1")] == [(0, False)]


# json:// ----------------------------------------------------------------------------
def test_json_evaluation_created_through_the_023_interface_starts_with_023s_line(
    tmp_path: Path,
):
    storage = JSONStorage(str(tmp_path))
    assert storage.root_dir == tmp_path
    storage.create_evaluation("exp", evaluation("path/to/eval", metadata={"k": "v"}))
    storage.add_results("exp", "path/to/eval", [row(0), row(1)])

    lines = (tmp_path / "exp" / "path@to@eval.jsonl").read_text().splitlines()
    assert json.loads(lines[0]) == {
        "evaluation_name": "path@to@eval",
        "metadata": {"k": "v"},
        "started_at": 1_700_000_000.0,
        "status": "running",
        "completed_at": None,
    }
    assert [json.loads(line)["item_id"] for line in lines[1:]] == [0, 1]  # what 0.23 reads
    assert [r.item_id for r in storage.get_results("exp", "path/to/eval")] == [0, 1]


def test_json_reads_023_files_whose_first_line_is_no_record(tmp_path: Path):
    folder = tmp_path / "old"
    folder.mkdir()
    record_line = json.dumps(row(3).to_dict())
    (folder / "eval_a.jsonl").write_text(f'{{"header": "data"}}\n{record_line}\n\n')
    (folder / "notes.txt").write_text("kept with the experiment")
    storage = JSONStorage(str(tmp_path))

    assert storage.list_experiments() == ["old"]
    assert storage.list_evaluations("old") == ["eval_a"]
    assert [r.item_id for r in storage.get_results("old", "eval_a")] == [3]
    storage.delete_experiment("old")
    assert not folder.exists()


def test_io_failures_are_storage_errors_and_os_errors(tmp_path: Path):
    (tmp_path / "file").write_text("not a directory")
    for url in (f"json://{tmp_path / 'file'}", f"sqlite://{tmp_path / 'file' / 'r.db'}"):
        with pytest.raises(OSError) as caught:
            get_storage(url).create_experiment("exp")
        assert isinstance(caught.value, StorageIOError) and isinstance(caught.value, StorageError)
        assert str(tmp_path / "file") in str(caught.value)


# A backend written before the names moved ----------------------------------------------
class FormerStorage(Storage):
    """A backend of this project's interface as it was: ``list_experiments`` gave the
    ExperimentInfos and ``load_evaluation`` the EvaluationInfo. Kept in memory."""

    stores: dict[str, dict[str, dict]] = {}

    def __init__(self, location: str):
        super().__init__(location)
        self.data = self.stores.setdefault(location, {})

    def create_experiment(self, name: str, *, ephemeral: bool = False) -> None:
        self.data.setdefault(name, {"info": ExperimentInfo(name, time.time(), ephemeral)})

    def list_experiments(self) -> list[ExperimentInfo]:
        return [experiment["info"] for experiment in self.data.values()]

    def delete_experiment(self, name: str) -> None:
        del self.data[name]

    def rename_experiment(self, old: str, new: str) -> None:
        self.data[new] = self.data.pop(old)

    def list_evaluations(self, experiment: str) -> list[str]:
        return [k for k in self.data[experiment] if k != "info"]

    def save_evaluation(self, experiment: str, info: EvaluationInfo) -> None:
        self.data[experiment].setdefault(info.name, {"records": []})["info"] = info

    def load_evaluation(self, experiment: str, evaluation: str) -> EvaluationInfo | None:
        return self.data.get(experiment, {}).get(evaluation, {}).get("info")

    def add_records(self, experiment: str, evaluation: str, records: Sequence[Record]) -> None:
        self.data[experiment][evaluation]["records"].extend(records)

    def iter_records(self, experiment: str, evaluation: str) -> Iterator[Record]:
        return iter(self.data.get(experiment, {}).get(evaluation, {}).get("records", []))

    def lock_experiment(self, experiment: str, owner: LockOwner) -> LockOwner | None:
        return None

    def unlock_experiment(self, experiment: str, owner: LockOwner) -> None:
        pass


def test_a_backend_written_before_the_names_moved_keeps_working():
    @foreach("x", [1, 2, 3])
    def eval_small(x):
        return Score("small", x < 3, [accuracy()])

    with registry._backends.isolated():
        register_storage("former", FormerStorage)
        summary = dotevals.run(eval_small, storage="former://a", experiment="e", progress=False)
        storage = get_storage("former://a")

    assert type(storage) is FormerStorage  # no adapter: it is a backend of this interface
    assert summary.metrics == {"small": {"accuracy": pytest.approx(2 / 3)}}
    assert [e.name for e in storage.experiments()] == ["e"]
    assert [e.name for e in storage.list_experiments()] == ["e"]  # its own, as it was
    assert storage.evaluation_info("e", "eval_small").status == "completed"
    assert storage.completed_items("e", "eval_small") == [0, 1, 2]  # 0.23's names work too
    with pytest.raises(NotImplementedError, match="FormerStorage cannot remove records"):
        storage.remove_error_result("e", "eval_small", 0)


def test_an_override_of_the_former_name_below_a_backend_is_taken(tmp_path: Path):
    class WithoutDrafts(JSONStorage):
        """Hides the experiments named draft-*, overriding the former name."""

        def list_experiments(self) -> list[ExperimentInfo]:
            return [e for e in super().experiments() if not e.name.startswith("draft-")]

    storage = WithoutDrafts(str(tmp_path))
    storage.create_experiment("draft-1")
    storage.create_experiment("final")
    assert [e.name for e in storage.experiments()] == ["final"]
    assert [e.name for e in JSONStorage(str(tmp_path)).experiments()] == ["draft-1", "final"]


# A backend of dotevals 0.23's interface -----------------------------------------------
class MemoryStorage023(Storage):
    """A backend written for dotevals 0.23, without a batch removal of its own."""

    def __init__(self, path: str):
        self.experiments: dict[str, dict[str, list]] = {}
        self.evaluations: dict[tuple[str, str], Evaluation] = {}
        self.removed: list[int] = []

    def create_experiment(self, experiment_name):
        self.experiments.setdefault(experiment_name, {})

    def delete_experiment(self, experiment_name):
        del self.experiments[experiment_name]

    def rename_experiment(self, old_name, new_name):
        self.experiments[new_name] = self.experiments.pop(old_name)

    def list_experiments(self):
        return list(self.experiments)

    def create_evaluation(self, experiment_name, evaluation):
        self.evaluations[(experiment_name, evaluation.evaluation_name)] = evaluation
        self.experiments.setdefault(experiment_name, {})[evaluation.evaluation_name] = []

    def load_evaluation(self, experiment_name, evaluation_name):
        return self.evaluations.get((experiment_name, evaluation_name))

    def update_evaluation_status(self, experiment_name, evaluation_name, status):
        self.evaluations[(experiment_name, evaluation_name)].status = status

    def completed_items(self, experiment_name, evaluation_name):
        return [r.item_id for r in self.get_results(experiment_name, evaluation_name)]

    def list_evaluations(self, experiment_name):
        return list(self.experiments.get(experiment_name, {}))

    def add_results(self, experiment_name, evaluation_name, results):
        self.experiments[experiment_name][evaluation_name].extend(results)

    def get_results(self, experiment_name, evaluation_name):
        return list(self.experiments.get(experiment_name, {}).get(evaluation_name, []))

    def remove_error_result(self, experiment_name, evaluation_name, item_id):
        self.removed.append(item_id)
        records = self.experiments[experiment_name][evaluation_name]
        records[:] = [r for r in records if r.item_id != item_id or r.error is None]


def test_a_backend_of_the_023_interface_creates_lists_and_removes_through_get_storage():
    with registry._backends.isolated():
        register_storage("memory023", MemoryStorage023)
        storage = get_storage("memory023://anywhere")

    storage.create_experiment("exp1")
    storage.create_evaluation("exp1", evaluation())
    storage.add_results("exp1", "eval1", [row(0, error="OSError: gone"), row(1)])
    assert storage.list_experiments() == ["exp1"]
    assert "exp1" in storage.list_experiments()
    assert storage.load_evaluation("exp1", "eval1").status is EvaluationStatus.RUNNING

    storage.remove_error_results_batch("exp1", "eval1", [0, 1])

    assert storage.backend.removed == [0, 1]  # its own method, row by row
    assert [r.item_id for r in storage.get_results("exp1", "eval1")] == [1]
