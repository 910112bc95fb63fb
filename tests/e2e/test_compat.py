"""Code written for dotevals 0.23 runs unchanged: its plugins and flags, in real pytest
sessions.

Plugins are real installed distributions: a ``*.dist-info`` directory with an
``entry_points.txt`` on the PYTHONPATH of a subprocess pytest session."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap

import pytest
from pool_support import wait_until
from pytest_runs import run_pytest

# Plugins -----------------------------------------------------------------------

PLUGIN_MODULE = '''
    import pickle
    import time
    from pathlib import Path

    from dotevals.datasets import Dataset
    from dotevals.models import Evaluation, EvaluationStatus, Record
    from dotevals.storage import Storage


    class Capitals(Dataset):
        """A dataset without splits, as a plugin for dotevals 0.23 writes one."""

        name = "capitals"
        splits = []
        columns = ["country", "capital"]

        def __init__(self, split=None, **kwargs):
            self.data = [("France", "Paris"), ("Japan", "Tokyo"), ("Peru", "Lima")]
            self.num_rows = len(self.data)

        def __iter__(self):
            yield from self.data


    class PickleStorage(Storage):
        """A backend of the documented Storage interface: one pickle file."""

        def __init__(self, path):
            self.path = Path(path)

        def _load(self):
            return pickle.loads(self.path.read_bytes()) if self.path.exists() else {}

        def _save(self, data):
            self.path.write_bytes(pickle.dumps(data))

        def create_experiment(self, experiment_name):
            data = self._load()
            data.setdefault(experiment_name, {})
            self._save(data)

        def delete_experiment(self, experiment_name):
            data = self._load()
            del data[experiment_name]
            self._save(data)

        def rename_experiment(self, old_name, new_name):
            data = self._load()
            data[new_name] = data.pop(old_name)
            self._save(data)

        def list_experiments(self):
            return list(self._load())

        def create_evaluation(self, experiment_name, evaluation):
            data = self._load()
            evaluations = data.setdefault(experiment_name, {})
            if evaluation.evaluation_name not in evaluations:
                evaluations[evaluation.evaluation_name] = {"evaluation": evaluation, "results": []}
            self._save(data)

        def load_evaluation(self, experiment_name, evaluation_name):
            entry = self._load().get(experiment_name, {}).get(evaluation_name)
            return entry["evaluation"] if entry else None

        def update_evaluation_status(self, experiment_name, evaluation_name, status):
            data = self._load()
            evaluation = data[experiment_name][evaluation_name]["evaluation"]
            evaluation.status = status
            if status == EvaluationStatus.COMPLETED:
                evaluation.completed_at = time.time()
            self._save(data)

        def completed_items(self, experiment_name, evaluation_name):
            return [r.item_id for r in self.get_results(experiment_name, evaluation_name)
                    if r.error is None]

        def list_evaluations(self, experiment_name):
            return list(self._load().get(experiment_name, {}))

        def add_results(self, experiment_name, evaluation_name, results):
            data = self._load()
            data[experiment_name][evaluation_name]["results"].extend(results)
            self._save(data)

        def get_results(self, experiment_name, evaluation_name):
            entry = self._load().get(experiment_name, {}).get(evaluation_name)
            return list(entry["results"]) if entry else []

        def remove_error_result(self, experiment_name, evaluation_name, item_id):
            data = self._load()
            entry = data[experiment_name][evaluation_name]
            entry["results"] = [r for r in entry["results"]
                                if r.item_id != item_id or r.error is None]
            self._save(data)
'''

PROVIDER_PLUGIN = """
    import pytest

    from dotevals.providers import ModelHandle, ModelProvider


    class EchoProvider(ModelProvider):
        async def setup(self, resource_spec, **config):
            return ModelHandle(resource_spec, resource_spec.upper(), self)

        async def teardown(self, resource_id):
            pass


    @pytest.fixture(scope="session")
    def echo_provider():
        yield EchoProvider()
"""

ENTRY_POINTS = """\
[dotevals.datasets]
capitals = compatplug:Capitals

[dotevals.model_providers]
echo = compatplug_fixtures:echo_provider

[dotevals.storage]
pickled = compatplug:PickleStorage

[pytest11]
compatplug = compatplug_fixtures
"""


@pytest.fixture
def plugged(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """An installed distribution declaring a dataset, a provider fixture and a storage."""
    site = pytester.path / "site"
    dist_info = site / "compatplug-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: compatplug\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(ENTRY_POINTS)
    (site / "compatplug.py").write_text(textwrap.dedent(PLUGIN_MODULE))
    (site / "compatplug_fixtures.py").write_text(textwrap.dedent(PROVIDER_PLUGIN))
    monkeypatch.setenv("PYTHONPATH", str(site))
    return pytester


def test_dataset_plugin_without_splits(plugged: pytest.Pytester):
    plugged.makepyfile(
        eval_capitals="""
        from dotevals import Result, foreach
        from dotevals.datasets import get_dataset_info
        from dotevals.models import Score
        from dotevals.metrics import accuracy

        assert get_dataset_info("capitals")["splits"] == []


        @foreach.capitals()
        def eval_capitals(country, capital):
            return Result(Score("short", len(capital) <= 5, [accuracy()]))
        """
    )
    result = run_pytest(
        plugged, "eval_capitals.py", "--storage", "json://store", "--experiment", "e", progress=True
    )
    result.assert_outcomes(passed=1)
    from dotevals.storage import get_storage

    records = get_storage(f"json://{plugged.path / 'store'}").load_records(
        "e", "eval_capitals.py::eval_capitals"
    )
    assert [r.dataset_row for r in records] == [
        {"country": "France", "capital": "Paris"},
        {"country": "Japan", "capital": "Tokyo"},
        {"country": "Peru", "capital": "Lima"},
    ]


def test_model_provider_entry_point_naming_a_fixture(plugged: pytest.Pytester):
    plugged.makepyfile(
        test_providers="""
        import asyncio

        from compatplug_fixtures import EchoProvider


        def test_model_providers(model_providers, echo_provider):
            assert type(model_providers["echo"]) is EchoProvider
            assert model_providers["echo"] is echo_provider
            handle = asyncio.run(model_providers["echo"].setup("tiny"))
            assert handle.model == "TINY"
        """
    )
    result = run_pytest(plugged, "-W", "error::UserWarning", progress=True)
    result.assert_outcomes(passed=1)


def test_storage_backend_of_the_documented_interface(plugged: pytest.Pytester):
    plugged.makepyfile(
        eval_stored="""
        from pathlib import Path

        from dotevals import foreach
        from dotevals.models import Score
        from dotevals.metrics import accuracy

        CALLS = Path(__file__).with_name("calls.txt")


        @foreach("x", range(4))
        def eval_stored(x):
            with CALLS.open("a") as f:
                f.write(f"{x}\\n")
            return Score("even", x % 2 == 0, [accuracy()])
        """
    )
    db = plugged.path / "results.pkl"
    args = ("eval_stored.py", "--storage", f"pickled://{db}", "--experiment", "e1")
    run_pytest(plugged, *args, "--samples", "2", progress=True).assert_outcomes(passed=1)
    result = run_pytest(plugged, *args, progress=True)  # resumes: only the two rows left run
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*eval_stored*0.5*"])
    assert (plugged.path / "calls.txt").read_text().split() == ["0", "1", "2", "3"]

    data = pickle.loads(db.read_bytes())
    entry = data["e1"]["eval_stored.py::eval_stored"]
    assert entry["evaluation"].status.value == "completed"
    assert sorted(r.item_id for r in entry["results"]) == [0, 1, 2, 3]

    listing = plugged.run(
        sys.executable,
        "-c",
        "import sys; from dotevals.cli import main; sys.exit(main())",
        "list",
        "--storage",
        f"pickled://{db}",
        timeout=60,
    )
    assert listing.ret == 0
    listing.stdout.fnmatch_lines(["*e1*"])


HOLD_LOCK = """
import sys
import time
from pathlib import Path

from dotevals.storage.writer import ExperimentStore

store = ExperimentStore(sys.argv[1], "e1")
store.lock()
Path("locked").write_text("yes")
deadline = time.monotonic() + 60
while not Path("release").exists() and time.monotonic() < deadline:
    time.sleep(0.05)
store.unlock()
"""


def test_storage_backend_of_the_documented_interface_gets_a_run_lock(plugged: pytest.Pytester):
    plugged.makepyfile(
        eval_one="""
        from dotevals import foreach
        from dotevals.models import Score


        @foreach("x", [1])
        def eval_one(x):
            return Score("ok", True)
        """
    )
    url = f"pickled://{plugged.path / 'results.pkl'}"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, url],
        cwd=plugged.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until((plugged.path / "locked").exists, 60, "the lock", holder)
        second = run_pytest(
            plugged, "eval_one.py", "--storage", url, "--experiment", "e1", progress=True
        )
        assert second.ret == pytest.ExitCode.USAGE_ERROR
        second.stderr.fnmatch_lines(
            [f"*experiment 'e1' in {url} is in use by process {holder.pid}*"]
        )
    finally:
        (plugged.path / "release").write_text("yes")
        holder.wait(timeout=60)
    assert holder.returncode == 0
    run_pytest(
        plugged, "eval_one.py", "--storage", url, "--experiment", "e1", progress=True
    ).assert_outcomes(passed=1)


# pytest -------------------------------------------------------------------------


def test_dash_c_is_concurrent(pytester: pytest.Pytester):
    pytester.makepyfile(
        eval_pair="""
        import asyncio

        from dotevals import foreach
        from dotevals.models import Score

        OTHER_RAN = asyncio.Event()


        @foreach("x", [1])
        async def eval_waits(x):
            # finishes only if eval_sets runs at the same time
            await asyncio.wait_for(OTHER_RAN.wait(), 20)
            return Score("ok", True)


        @foreach("x", [1])
        async def eval_sets(x):
            OTHER_RAN.set()
            return Score("ok", True)
        """
    )
    result = run_pytest(pytester, "-C", "--storage", "json://store", progress=True)
    result.assert_outcomes(passed=2)
