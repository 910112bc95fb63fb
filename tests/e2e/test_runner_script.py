"""The Runner used directly, from a Python script run in its own process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dotevals import Runner
from dotevals.errors import ConfigurationError
from dotevals.options import OPTIONS
from dotevals.storage import get_storage

SCRIPT = textwrap.dedent(
    """
    import asyncio
    import functools
    import json
    import sys

    from dotevals import Runner, Score, foreach
    from dotevals.metrics import accuracy

    calls = []


    @foreach("question,answer", [("a", "A"), ("b", "B"), ("c", "x")])
    def eval_upper(question, answer, model):
        calls.append(("eval_upper", question))
        return Score("em", model(question) == answer, [accuracy()])


    @foreach("x", [1, 2])
    async def eval_async(x, model):
        calls.append(("eval_async", x))
        await asyncio.sleep(0)
        return Score("em", await model(x), [accuracy()])


    @foreach("a,b", [(1,), (2, 2)])
    def eval_broken(a, b):
        return Score("em", True, [accuracy()])


    async def is_even(x):
        return x % 2 == 0


    def main():
        results = {}
        runner = Runner("script-exp", storage=sys.argv[1], progress=False, results_dict=results)
        asyncio.run(
            runner.run_evaluations(
                [
                    functools.partial(eval_upper, model=str.upper),
                    functools.partial(eval_async, model=is_even),
                    eval_broken,
                ]
            )
        )
        print(
            json.dumps(
                {
                    "experiment": runner.experiment_name,
                    "results": {name: s.metrics for name, s in runner.results.items()},
                    "rows": {name: len(s.records) for name, s in runner.results.items()},
                    "results_dict": sorted(results),
                    "same_objects": all(results[n] is runner.results[n] for n in results),
                    "outcomes": [
                        [o.name, o.new_rows, type(o.error).__name__ if o.error else None]
                        for o in runner.outcomes
                    ],
                    "calls": calls,
                }
            )
        )


    if __name__ == "__main__":
        main()
    """
)


def run_source(tmp_path: Path, name: str, source: str, url: str) -> subprocess.CompletedProcess:
    """Write ``source`` as the script ``name`` and run it with the storage ``url``;
    it must succeed."""
    script = tmp_path / name
    script.write_text(source)
    done = subprocess.run(
        [sys.executable, str(script), url],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


def run_script(tmp_path: Path, url: str) -> dict:
    done = run_source(tmp_path, "run_evals.py", SCRIPT, url)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("kind", ["json", "sqlite"])
def test_runner_from_a_script(tmp_path, kind):
    url = f"json://{tmp_path / 'store'}" if kind == "json" else f"sqlite://{tmp_path / 'r.db'}"
    out = run_script(tmp_path, url)
    assert out["experiment"] == "script-exp"
    assert out["results"] == {
        "eval_upper": {"em": {"accuracy": pytest.approx(2 / 3)}},
        "eval_async": {"em": {"accuracy": 0.5}},
    }
    assert out["rows"] == {"eval_upper": 3, "eval_async": 2}
    # a failed evaluation is in the outcomes, not in the results
    assert out["results_dict"] == ["eval_async", "eval_upper"]
    assert out["same_objects"] is True
    assert out["outcomes"] == [
        ["eval_upper", 3, None],
        ["eval_async", 2, None],
        ["eval_broken", 0, "DatasetError"],
    ]
    assert [c for c in out["calls"] if c[0] == "eval_upper"] == [
        ["eval_upper", "a"],
        ["eval_upper", "b"],
        ["eval_upper", "c"],
    ]

    storage = get_storage(url)
    assert [e.name for e in storage.experiments()] == ["script-exp"]
    assert storage.list_evaluations("script-exp") == ["eval_upper", "eval_async", "eval_broken"]
    upper = storage.evaluation_info("script-exp", "eval_upper")
    assert upper.status == "completed"
    assert upper.metadata["function"] == "__main__.eval_upper"
    assert storage.evaluation_info("script-exp", "eval_broken").status == "failed"
    assert [r.dataset_row for r in storage.load_records("script-exp", "eval_upper")] == [
        {"question": "a", "answer": "A"},
        {"question": "b", "answer": "B"},
        {"question": "c", "answer": "x"},
    ]


def test_running_the_script_again_resumes_the_experiment(tmp_path):
    url = f"json://{tmp_path / 'store'}"
    run_script(tmp_path, url)
    again = run_script(tmp_path, url)
    assert again["outcomes"] == [
        ["eval_upper", 0, None],
        ["eval_async", 0, None],
        ["eval_broken", 0, "DatasetError"],
    ]
    assert again["calls"] == []
    assert again["rows"] == {"eval_upper": 3, "eval_async": 2}
    assert again["results"]["eval_upper"] == {"em": {"accuracy": pytest.approx(2 / 3)}}


def test_every_option_is_a_runner_keyword_a_pytest_flag_and_an_ini_setting(pytester):
    runner_options = [spec for spec in OPTIONS if spec.keyword]
    runner = Runner(**{spec.name: spec.default for spec in runner_options})
    assert runner.options.keywords().keys() == {spec.name for spec in runner_options}
    result = pytester.runpytest("-p", "no:cacheprovider", "--help")
    for spec in OPTIONS:
        result.stdout.fnmatch_lines([f"*{spec.flags[-1]}*", f"*{spec.ini} *"])
    with pytest.raises(ConfigurationError, match="unknown Runner option fail_under"):
        Runner(fail_under=["em=1"])  # pytest's alone: the plugin checks gates


WORKER_IMPORTS = textwrap.dedent(
    """
    import sys

    import dotevals
    from dotevals import Result, Score, foreach


    @foreach("n", range(4))
    def eval_imports(n):
        names = ("pytest", "asyncio", "tenacity")
        return Result(*(Score(f"{name} imported", name in sys.modules) for name in names))


    if __name__ == "__main__":
        summary = dotevals.run(
            eval_imports, workers=2, storage=sys.argv[1], experiment="w", progress=False
        )
    """
)


def test_worker_processes_import_neither_pytest_nor_asyncio_nor_tenacity(tmp_path):
    """foreach.py imports the Runner (and so pytest) only when an evaluation is called;
    asyncio and tenacity wait for an async fixture or a failed row."""
    url = f"json://{tmp_path / 'store'}"
    done = run_source(tmp_path, "imports.py", WORKER_IMPORTS, url)
    assert "workers" in done.stderr  # the rows ran in a pool
    records = get_storage(url).load_records("w", "eval_imports")
    assert len(records) == 4
    for record in records:
        assert {score.name: score.value for score in record.result.scores} == {
            "pytest imported": False,
            "asyncio imported": False,
            "tenacity imported": False,
        }


UNGUARDED = textwrap.dedent(
    """
    import os
    import sys

    import dotevals
    from dotevals import Score, foreach

    RUNS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runs.txt")
    with open(RUNS, "a") as runs:  # each time this module runs
        runs.write(f"{os.getpid()}\\n")


    @foreach("n", range(4))
    def eval_parent(n):
        return Score("parent", os.getppid())


    dotevals.run(eval_parent, workers=2, storage=sys.argv[1], experiment="u", progress=False)
    """
)


def test_a_script_without_a_main_guard_runs_its_rows_in_workers_that_never_run_it_again(tmp_path):
    """Outside pytest, workers start as loky starts them, without importing the main module:
    a script need not put ``dotevals.run`` under ``if __name__ == "__main__":``."""
    url = f"json://{tmp_path / 'store'}"
    run_source(tmp_path, "unguarded.py", UNGUARDED, url)
    runs = (tmp_path / "runs.txt").read_text().split()
    assert len(runs) == 1  # the script itself, and no worker
    records = get_storage(url).load_records("u", "eval_parent")
    assert [r.error for r in records] == [None] * 4
    assert {r.result.scores[0].value for r in records} == {int(runs[0])}
