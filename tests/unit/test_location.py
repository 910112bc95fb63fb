"""One results folder for one project: the project root and its storage, found from the
current directory as pytest finds its rootdir and ini file, the same for pytest, the
``dotevals`` command, ``dotevals.run``, ``dotevals.load`` and a Runner (the runs of
real pytest sessions: e2e/test_cli.py)."""

from __future__ import annotations

import pytest
from cli_runs import cli_output, run_cli

import dotevals
from dotevals import Score, foreach
from dotevals.errors import ConfigurationError
from dotevals.runners import Runner
from dotevals.storage import get_storage
from dotevals.storage.location import display_url, find_project, storage_option

PYPROJECT_STORAGE = '[tool.pytest.ini_options]\ndotevals_storage = "sqlite://results/evals.db"\n'


@foreach("q", [1, 2])
def eval_two(q):
    return Score("ok", True)


eval_two.__test__ = False  # run by the tests, not collected as an evaluation of this suite


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("pytest.ini", ""),  # pytest's own file counts even empty
        ("pytest.toml", "[pytest]\n"),
        ("pyproject.toml", "[tool.pytest.ini_options]\n"),
        ("pyproject.toml", "[tool.pytest]\nminversion = '8'\n"),
        ("tox.ini", "[pytest]\n"),
        ("setup.cfg", "[tool:pytest]\n"),
    ],
)
def test_the_nearest_pytest_configuration_file_is_the_project_root(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    below = tmp_path / "evals" / "deep"
    below.mkdir(parents=True)
    project = find_project(below)
    assert (project.root, project.config) == (tmp_path, tmp_path / name)
    assert project.storage == f"json://{tmp_path / '.dotevals'}"


@pytest.mark.parametrize(
    ("name", "text"),
    [("tox.ini", "[tox]\n"), ("setup.cfg", "[metadata]\nname = x\n")],
)
def test_a_file_without_a_pytest_section_is_not_the_projects(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    evals = tmp_path / "evals"
    evals.mkdir()
    project = find_project(evals)
    assert (project.root, project.config) == (evals, None)


def test_without_a_configuration_file_a_pyproject_then_a_setup_py_then_the_directory(tmp_path):
    evals = tmp_path / "evals"
    evals.mkdir()
    assert find_project(evals).root == evals  # nothing: the current directory
    (tmp_path / "setup.py").write_text("")
    assert find_project(evals).root == tmp_path
    (evals / "pyproject.toml").write_text("[project]\nname = 'x'\n")  # pytest >= 8.1 takes it
    assert find_project(evals).root == evals
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # a real configuration wins
    assert find_project(evals).root == tmp_path


def test_the_storage_setting_is_taken_from_the_project_root(tmp_path):
    (tmp_path / "pyproject.toml").write_text(PYPROJECT_STORAGE)
    (tmp_path / "evals").mkdir()
    project = find_project(tmp_path / "evals")
    assert project.storage == f"sqlite://{tmp_path / 'results' / 'evals.db'}"
    (tmp_path / "pyproject.toml").write_text("[tool.pytest]\ndotevals_storage = 5\n")
    with pytest.raises(ConfigurationError, match="dotevals_storage in .* must be a storage URL"):
        find_project(tmp_path).storage  # noqa: B018


def test_an_unreadable_configuration_file_is_one_clear_error(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options\n")
    with pytest.raises(ConfigurationError, match=r"cannot read .*pyproject.toml"):
        find_project(tmp_path)


@pytest.mark.parametrize(
    ("files", "args"),
    [
        ({}, ["evals"]),
        ({"pytest.ini": "[pytest]\n"}, ["evals"]),
        ({"pyproject.toml": "[tool.pytest.ini_options]\n"}, []),
        ({"pyproject.toml": "[project]\nname = 'x'\n"}, ["evals"]),
        ({"tox.ini": "[pytest]\n", "setup.cfg": "[tool:pytest]\n"}, ["evals/eval_a.py"]),
        ({"setup.py": ""}, ["evals"]),
    ],
)
def test_pytest_finds_the_root_the_command_finds(pytester, files, args):
    """The root pytest stores under (``project_root``) is the one every other way of
    reading finds from the same directory."""
    from dotevals._pytest_bridge.project import project_root

    for name, text in files.items():
        (pytester.path / name).write_text(text)
    (pytester.path / "evals").mkdir()
    (pytester.path / "evals" / "eval_a.py").write_text("")
    config = pytester.parseconfigure(*args)
    assert project_root(config) == find_project(pytester.path).root


def test_the_command_reads_the_storage_set_in_pyproject(capsys, tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text(PYPROJECT_STORAGE)
    url = f"sqlite://{tmp_path / 'results' / 'evals.db'}"
    dotevals.run(eval_two, experiment="baseline", storage=url, progress=False)
    monkeypatch.chdir(tmp_path)
    out = cli_output(capsys, "list")
    assert out.startswith("Experiments in sqlite://results/evals.db\n")
    assert "baseline" in out
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")  # from anywhere in the project
    assert "baseline" in cli_output(capsys, "show", "baseline")


def test_run_load_a_runner_and_the_command_agree_on_the_project_storage(
    capsys, tmp_path, monkeypatch
):
    (tmp_path / "pytest.ini").write_text("[pytest]\ndotevals_storage = json://results\n")
    (tmp_path / "scripts").mkdir()
    monkeypatch.chdir(tmp_path / "scripts")
    summary = dotevals.run(eval_two, experiment="by-run", progress=False)
    assert summary.rows == 2
    runner = Runner(experiment_name="by-runner", progress=False)
    runner.run([eval_two])
    assert runner.store.storage.url == f"json://{tmp_path / 'results'}"
    assert set(dotevals.load("by-run")) == {"eval_two"}
    listed = get_storage(f"json://{tmp_path / 'results'}").experiments()
    assert sorted(e.name for e in listed) == ["by-run", "by-runner"]
    assert not (tmp_path / "scripts" / ".dotevals").exists()
    assert "by-runner" in cli_output(capsys, "list")


def test_no_storage_says_where_it_looked(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "show", "baseline")
    assert (code, out) == (1, "")
    assert err == (
        f"error: there is no storage at json://.dotevals, the project's default: .dotevals "
        f"in {tmp_path}, the current directory, since no pytest.ini, pyproject.toml, tox.ini, "
        "setup.cfg or setup.py is there or above it. pytest creates it when it first stores "
        "results: run dotevals from the directory you ran pytest in, or give --storage\n"
    )
    (tmp_path / "pyproject.toml").write_text(PYPROJECT_STORAGE)
    code, _, err = run_cli(capsys, "list")
    assert code == 1
    assert err.startswith(
        f"error: there is no storage at sqlite://results/evals.db, set by dotevals_storage "
        f"in {tmp_path / 'pyproject.toml'}, from the project root {tmp_path}. "
    )
    code, _, err = run_cli(capsys, "list", "--storage", "elsewhere")
    assert err == (
        f"error: there is no storage at elsewhere ({tmp_path / 'elsewhere'}): check --storage "
        "(a run creates it when it first stores results)\n"
    )
    assert not (tmp_path / "results").exists() and not (tmp_path / ".dotevals").exists()


def test_hints_name_the_storage_only_when_the_command_would_not_find_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert storage_option(f"json://{tmp_path / '.dotevals'}") == ""
    assert storage_option("json://.dotevals") == ""
    assert storage_option(f"json://{tmp_path / 'other'}") == " --storage json://other"
    assert storage_option("sqlite:///elsewhere/x.db") == " --storage sqlite:///elsewhere/x.db"
    assert display_url(f"sqlite://{tmp_path / 'r' / 'x.db'}") == "sqlite://r/x.db"
    assert display_url("memory://x") == "memory://x"
