"""The ``dotevals`` command called in-process, run on storage filled through the storage API."""

from __future__ import annotations

import json
import time

import pytest
from cli_runs import run_cli
from results_support import STARTED, answer_record, nothing_spent
from stores import storage_url

import dotevals
from dotevals import Result, Score, foreach
from dotevals._report.format import printable
from dotevals.cli import main
from dotevals.datasets import Dataset, registry
from dotevals.metrics import accuracy
from dotevals.models import Record
from dotevals.storage import EvaluationInfo, get_storage

EPHEMERAL = "Ephemeral experiments (runs without --experiment)"


def _section(text: str, heading: str) -> str:
    """The table under ``heading`` in ``text`` (up to the next blank line)."""
    return text.split(heading, 1)[1].strip().split("\n\n", 1)[0]


# list ------------------------------------------------------------------------
def test_list_separates_named_and_ephemeral(capsys, listing_url):
    code, out, err = run_cli(capsys, "list", "--storage", listing_url)
    assert code == 0 and err == ""
    assert out.startswith(f"Experiments in {listing_url}\n")
    named = _section(out, f"Experiments in {listing_url}")
    ephemeral = _section(out, EPHEMERAL)
    assert named.splitlines()[0].split() == ["name", "created", "evaluations"]
    assert "gsm8k-baseline" in named and "gsm8k-large" in named
    assert "20240101-000000-ab12cd34" not in named
    assert "20240101-000000-ab12cd34" in ephemeral and "gsm8k" not in ephemeral
    baseline = next(line for line in named.splitlines() if line.startswith("gsm8k-baseline"))
    assert baseline.split()[-1] == "2"
    (info,) = [e for e in get_storage(listing_url).experiments() if e.name == "gsm8k-baseline"]
    created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.created_at))
    assert baseline.split()[1:3] == created.split()


def test_list_name_filter(capsys, listing_url):
    code, out, _ = run_cli(capsys, "list", "--storage", listing_url, "--name", "LARGE")
    assert code == 0
    assert "gsm8k-large" in out
    assert "gsm8k-baseline" not in out and "Ephemeral" not in out


def test_list_only_ephemeral(capsys, listing_url):
    code, out, _ = run_cli(capsys, "list", "--storage", listing_url, "--name", "AB12")
    assert code == 0
    assert out.startswith(f"No named experiments in {listing_url}.\n")
    assert "20240101-000000-ab12cd34" in _section(out, EPHEMERAL)


def test_list_nothing_matches(capsys, listing_url):
    assert run_cli(capsys, "list", "--storage", listing_url, "--name", "zzz") == (
        0,
        f"No experiments matching 'zzz' found in {listing_url}.\n",
        "",
    )


def test_list_empty_storage(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    url = f"json://{tmp_path / 'empty'}"
    assert run_cli(capsys, "list", "--storage", url) == (0, f"No experiments found in {url}.\n", "")


# show ------------------------------------------------------------------------
def test_show_table(capsys, listing_url):
    code, out, err = run_cli(capsys, "show", "gsm8k-baseline", "--storage", listing_url)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith(f"Experiment 'gsm8k-baseline' in {listing_url} (created ")
    evaluations = _section(out, lines[0]).splitlines()
    assert evaluations[0].split() == ["evaluation", "status", "started", "ended", "rows", "errors"]
    math = next(line.split() for line in evaluations if line.startswith("eval_math"))
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(STARTED)).split()
    ended = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(STARTED + 65)).split()
    assert math == ["eval_math", "completed", *started, *ended, "4", "0"]
    flaky = next(line.split() for line in evaluations if line.startswith("eval_flaky"))
    assert flaky == ["eval_flaky", "running", *started, "-", "2", "1"]
    metrics = [line.split() for line in out.split("\n\n")[2].splitlines()]
    assert metrics[0] == ["evaluation", "score", "metric", "value", "95%", "interval"]
    # eval_math's stored summary; eval_flaky computed from its records (the error counts
    # False). Wilson intervals of 3/4 and 1/2: statsmodels proportion_confint(method="wilson")
    assert ["eval_math", "exact_match", "accuracy", "0.7500", "[0.3006,", "0.9544]"] in metrics
    assert ["eval_flaky", "exact_match", "accuracy", "0.5000", "[0.0945,", "0.9055]"] in metrics
    assert "Records of" not in out


def test_show_stored_summary_is_used(capsys, tmp_path):
    """A stored summary wins over the records (it is what the run reported)."""
    url = f"json://{tmp_path / 's'}"
    storage = get_storage(url)
    storage.create_experiment("e")
    storage.save_evaluation("e", EvaluationInfo("ev", status="completed", metrics={"x": {"m": 1}}))
    storage.add_records("e", "ev", [answer_record(0, False)])
    storage.close()
    _, out, _ = run_cli(capsys, "show", "e", "--storage", url, "--format", "json")
    assert json.loads(out)["evaluations"][0]["metrics"] == {"x": {"m": 1}}


def test_show_full_prints_records(capsys, listing_url):
    code, out, _ = run_cli(capsys, "show", "gsm8k-baseline", "--storage", listing_url, "--full")
    assert code == 0
    records = _section(out, "Records of 'eval_flaky' (2)").splitlines()
    assert records[0].split() == ["item_id", "dataset_row", "scores", "error"]
    assert '{"question": "What is 0 + 1?", "answer": "1"}' in records[2]
    assert records[2].endswith("exact_match=True  -")
    assert records[3].endswith("TimeoutError: model too slow")
    assert "Records of 'eval_math' (4)" in out


def test_show_full_and_errors_of_an_evaluation_without_records(capsys, listing_url):
    storage = get_storage(listing_url)
    storage.save_evaluation("gsm8k-large", EvaluationInfo("eval_empty", started_at=STARTED))
    storage.close()
    code, out, err = run_cli(capsys, "show", "gsm8k-large", "--storage", listing_url, "--full")
    assert (code, err) == (0, "")
    assert _section(out, "Records of 'eval_empty' (0)").splitlines() == [
        "item_id  dataset_row  scores  error",
        "-------  -----------  ------  -----",
    ]
    code, out, err = run_cli(capsys, "show", "gsm8k-large", "--storage", listing_url, "--errors")
    assert (code, err) == (0, "")
    assert out.endswith("Errors of 'eval_empty' (0 of 0 rows)\n\nNo errors.\n")


def test_show_errors_lists_only_errored_rows(capsys, listing_url):
    code, out, _ = run_cli(capsys, "show", "gsm8k-baseline", "--storage", listing_url, "--errors")
    assert code == 0
    assert "Records of" not in out
    assert _section(out, "Errors of 'eval_math' (0 of 4 rows)") == "No errors."
    flaky = out.split("Errors of 'eval_flaky' (1 of 2 rows)\n", 1)[1]
    assert flaky.strip().splitlines() == [
        "TimeoutError (1 row)",
        "",
        '  row 1: {"question": "What is 1 + 1?", "answer": "2"}',
        "    TimeoutError: model too slow",
    ]


def test_show_one_evaluation(capsys, listing_url):
    code, out, _ = run_cli(
        capsys, "show", "gsm8k-baseline", "--storage", listing_url, "--evaluation", "eval_flaky"
    )
    assert code == 0
    assert "eval_flaky" in out and "eval_math" not in out


def test_show_json(capsys, listing_url):
    code, out, _ = run_cli(
        capsys, "show", "gsm8k-baseline", "--storage", listing_url, "--format", "json"
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["experiment"] == "gsm8k-baseline" and doc["storage"] == listing_url
    assert doc["ephemeral"] is False and isinstance(doc["created_at"], float)
    math, flaky = doc["evaluations"]
    assert math == {
        "name": "eval_math",
        "status": "completed",
        "started_at": STARTED,
        "ended_at": STARTED + 65,
        "rows": 4,
        "errors": 0,
        "metrics": {"exact_match": {"accuracy": 0.75}},
        "intervals": {"exact_match": {"accuracy": math["intervals"]["exact_match"]["accuracy"]}},
        "metadata": {"model": "tiny"},
        **nothing_spent(4),  # records stored without durations or usage
    }
    # statsmodels proportion_confint(3, 4, method="wilson"); stderr sqrt(p(1-p)/n)
    assert math["intervals"]["exact_match"]["accuracy"] == {
        "value": 0.75,
        "stderr": pytest.approx(0.21650635094610965),
        "low": pytest.approx(0.30064184258240184),
        "high": pytest.approx(0.9544127391902995),
        "method": "wilson",
    }
    assert flaky["status"] == "running" and flaky["ended_at"] is None
    assert (flaky["rows"], flaky["errors"]) == (2, 1)
    assert flaky["metrics"] == {"exact_match": {"accuracy": 0.5}}


def test_show_json_full_records_round_trip(capsys, listing_url):
    argv = ["show", "gsm8k-baseline", "--storage", listing_url, "--format", "json", "--full"]
    code, out, _ = run_cli(capsys, *argv, "--evaluation", "eval_flaky")
    assert code == 0
    (flaky,) = json.loads(out)["evaluations"]
    records = [Record.from_dict(r) for r in flaky["records"]]
    assert [r.item_id for r in records] == [0, 1]
    assert records[0].result.scores[0].value is True
    assert records[1].error == "TimeoutError: model too slow"
    assert records[1].dataset_row == {"question": "What is 1 + 1?", "answer": "2"}


def test_show_missing_experiment(capsys, listing_url):
    code, out, err = run_cli(capsys, "show", "nope", "--storage", listing_url)
    assert (code, out) == (1, "")
    assert err == (
        f"error: experiment 'nope' not found in {listing_url} "
        f"(see 'dotevals list --storage {listing_url}')\n"
    )


def test_show_missing_evaluation(capsys, listing_url):
    code, out, err = run_cli(
        capsys, "show", "gsm8k-baseline", "--storage", listing_url, "--evaluation", "x"
    )
    assert (code, out) == (1, "")
    assert err.startswith("error: evaluation 'x' not found in experiment 'gsm8k-baseline'")
    assert "'eval_math', 'eval_flaky'" in err


def test_show_experiment_without_evaluations(capsys, listing_url):
    code, out, _ = run_cli(capsys, "show", "gsm8k-large", "--storage", listing_url)
    assert code == 0 and "No evaluations yet." in out


# rename / delete -------------------------------------------------------------
def test_rename(capsys, listing_url):
    code, out, _ = run_cli(capsys, "rename", "gsm8k-large", "gsm8k-xl", "--storage", listing_url)
    assert code == 0
    assert out == f"Renamed experiment 'gsm8k-large' to 'gsm8k-xl' in {listing_url}.\n"
    names = [e.name for e in get_storage(listing_url).experiments()]
    assert "gsm8k-xl" in names and "gsm8k-large" not in names
    code, out, _ = run_cli(capsys, "show", "gsm8k-xl", "--storage", listing_url)
    assert code == 0


def test_rename_keeps_evaluations(capsys, listing_url):
    assert run_cli(capsys, "rename", "gsm8k-baseline", "b", "--storage", listing_url)[0] == 0
    _, out, _ = run_cli(capsys, "show", "b", "--storage", listing_url, "--format", "json")
    assert [e["rows"] for e in json.loads(out)["evaluations"]] == [4, 2]


def test_rename_errors(capsys, listing_url):
    code, _, err = run_cli(capsys, "rename", "nope", "x", "--storage", listing_url)
    assert code == 1 and err.startswith("error: experiment 'nope' not found in ")
    code, _, err = run_cli(
        capsys, "rename", "gsm8k-large", "gsm8k-baseline", "--storage", listing_url
    )
    assert code == 1
    assert err.startswith("error: experiment 'gsm8k-baseline' already exists in ")
    assert len(get_storage(listing_url).experiments()) == 3


def test_delete(capsys, listing_url):
    code, out, _ = run_cli(capsys, "delete", "gsm8k-baseline", "--storage", listing_url)
    assert code == 0
    assert out == f"Deleted experiment 'gsm8k-baseline' (2 evaluations) from {listing_url}.\n"
    assert "gsm8k-baseline" not in [e.name for e in get_storage(listing_url).experiments()]
    code, out, err = run_cli(capsys, "delete", "gsm8k-baseline", "--storage", listing_url)
    assert (code, out) == (1, "")
    assert err.startswith("error: experiment 'gsm8k-baseline' not found in ")


# datasets --------------------------------------------------------------------
@pytest.fixture
def extra_dataset():
    registry._reset()

    class Capitals(Dataset):
        """Capital cities of a few countries."""

        name = "capitals"
        columns = ["country", "capital"]
        splits = ["test"]

        def __iter__(self):
            yield ("France", "Paris")

    registry.register_dataset(Capitals)
    yield
    registry._reset()


def test_datasets(capsys, extra_dataset):
    code, out, err = run_cli(capsys, "datasets")
    assert code == 0 and err == ""
    lines = [line.split(None, 1) for line in out.splitlines()]
    assert lines[0] == ["name", "description"]
    assert [
        "arithmetic",
        'Integer arithmetic questions such as ("What is 17 + 25?", "42").',
    ] in lines
    assert ["capitals", "Capital cities of a few countries."] in lines


def test_datasets_verbose(capsys, extra_dataset):
    code, out, _ = run_cli(capsys, "datasets", "--verbose")
    assert code == 0
    header, _, *rows = out.splitlines()
    assert header.split() == ["name", "columns", "splits", "rows", "description"]
    arithmetic = next(r for r in rows if r.startswith("arithmetic"))
    assert "question, answer  train, test    40  Integer arithmetic" in arithmetic
    capitals = next(r for r in rows if r.startswith("capitals"))
    assert "country, capital  test" in capitals and " - " in capitals  # unknown num_rows


def test_datasets_name_filter(capsys, extra_dataset):
    _, out, _ = run_cli(capsys, "datasets", "--name", "CAP")
    assert "capitals" in out and "arithmetic" not in out
    assert run_cli(capsys, "datasets", "--name", "zzz") == (0, "No datasets matching 'zzz'.\n", "")


def test_datasets_broken_entry_point_is_one_warning_line(capsys, tmp_path, monkeypatch):
    dist = tmp_path / "fakeds-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeds\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[dotevals.datasets]\nbroken = fakeds_nowhere:X\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry._reset()
    try:
        code, out, err = run_cli(capsys, "datasets")
    finally:
        registry._reset()
    assert code == 0 and "arithmetic" in out
    assert err.startswith("warning: cannot load dataset 'broken'")
    assert len(err.splitlines()) == 1


# the command itself ----------------------------------------------------------
def test_unknown_storage_is_an_error_not_a_traceback(capsys):
    code, out, err = run_cli(capsys, "list", "--storage", "nope://x")
    assert (code, out) == (1, "")
    assert err.startswith("error: unknown storage 'nope://x'")


def test_usage_errors_and_help(capsys):
    assert main([]) == 2
    assert "required: COMMAND" in capsys.readouterr().err
    assert main(["show"]) == 2
    assert main(["--help"]) == 0
    assert "show" in capsys.readouterr().out


# Text from rows reaches the terminal escaped -------------------------------------------
#: Sets the terminal's title, rings its bell, clears the screen; then a one-character CSI
#: and a right-to-left override.
EVIL = "\x1b]0;pwned\x07\x1b[2J\x9b31m\u202e"
EVIL_SHOWN = "\\u001b]0;pwned\\u0007\\u001b[2J\\u009b31m\\u202e"
CONTROLS = "\x1b\x07\x9b\u202e"


def write_evil(url: str) -> None:
    """Experiments "a" and "b" whose error messages, tracebacks, score names, dataset
    rows and responses hold escape sequences; rows 2 and 3 change between them."""

    @foreach("q", [EVIL, "2", "3", "4"])
    def eval_evil(q, right):
        if q == EVIL:
            raise ValueError("model said " + q)
        if q == "2":
            return Result(Score("s" + EVIL, False, [accuracy()]), error="bad " + EVIL)
        return Result(Score("s" + EVIL, right, [accuracy()]), model_response=EVIL)

    for experiment, right in (("a", False), ("b", True)):
        dotevals.run(eval_evil, experiment=experiment, storage=url, progress=False, right=right)


@pytest.mark.parametrize(
    "argv",
    [
        ["show", "a"],
        ["show", "a", "--errors"],
        ["show", "a", "--full"],
        ["show", "a", "--format", "json"],
        ["compare", "a", "b", "--rows"],
        ["compare", "a", "b", "--format", "json", "--rows"],
    ],
    ids=" ".join,
)
def test_text_from_rows_is_printed_with_its_control_characters_escaped(tmp_path, capsys, argv):
    url = storage_url("json", tmp_path)
    write_evil(url)
    code, out, err = run_cli(capsys, *argv, "--storage", url)
    assert (code, err) == (0, "")
    assert not set(CONTROLS) & set(out)
    assert EVIL_SHOWN in out
    if "json" in argv:  # still JSON, holding the same text
        assert any(EVIL in text for text in texts(json.loads(out)))


def texts(data: object) -> list[str]:
    """Every key and string inside JSON ``data``."""
    if isinstance(data, str):
        return [data]
    if isinstance(data, dict):
        return [*data, *(text for value in data.values() for text in texts(value))]
    if isinstance(data, list):
        return [text for value in data for text in texts(value)]
    return []


def test_error_lines_are_escaped(tmp_path, capsys):
    code, out, err = run_cli(capsys, "show", "a", "--storage", f"json://{tmp_path}/{EVIL}")
    assert (code, out) == (1, "")
    assert err.startswith(f"error: there is no storage at json://{tmp_path}/{EVIL_SHOWN}:")


def test_printable_escapes_what_a_terminal_acts_on_and_keeps_the_rest():
    text = "a\x00b\x1bc\x7fd\x85e\u2066f\ud800 é 日本 ✓\n\tend"
    assert printable(text) == "a\\u0000b\\u001bc\\u007fd\\u0085e\\u2066f\\ud800 é 日本 ✓\n\tend"
    assert printable("\r\n") == "\\u000d\n"
