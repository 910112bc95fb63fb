"""What dotevals prints on a terminal, in this process: the pytest summary's table, its
notes and its error list, and the ``dotevals`` command's tables, fit to the terminal's
width (``COLUMNS``); errors listed by exception type first (the summary of real pytest
sessions: e2e/test_failure_reports.py and e2e/test_plugin.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_runs import cli_output

from dotevals import Result, Score, foreach
from dotevals._report.format import short_labels
from dotevals._report.text import Fit, error_summary, format_table, summary_notes, summary_table
from dotevals.metrics import accuracy
from dotevals.runners import EvaluationOutcome, Runner
from dotevals.storage import EvaluationInfo, get_storage

#: The names pytest stores long evaluations under.
LONG = "evals/suite/eval_long_module_name.py::eval_arithmetic_with_a_long_name"
OTHER = "evals/suite/eval_long_module_name.py::eval_stopper"


@foreach("q", range(60))
def eval_arithmetic_with_a_long_name(q):
    if q % 5 == 0:
        raise ValueError(f"bad {q}")
    if q in (7, 8, 9, 11):
        return True  # 4 TypeErrors with one message
    return Result(
        Score("exact_match", True, [accuracy()]), Score("numeric_match", q % 2 == 0, [accuracy()])
    )


@foreach("q", range(3))
def eval_stopper(q):
    return Score("exact_match", True, [accuracy()])


eval_arithmetic_with_a_long_name.__test__ = eval_stopper.__test__ = False


def outcomes(tmp_path: Path) -> list[EvaluationOutcome]:
    """The outcomes of a run, under the long names pytest would store them as."""
    runner = Runner(experiment_name="e", storage=f"json://{tmp_path}", progress=False)
    runner.run([eval_arithmetic_with_a_long_name, eval_stopper])
    long, other = runner.outcomes
    long.stored_name, other.stored_name = LONG, OTHER
    return runner.outcomes


def test_the_summary_fits_80_columns_with_short_names(tmp_path):
    found = outcomes(tmp_path)
    wide = summary_table(found, width=None)
    assert wide[2].startswith(LONG + "    60   60      16  exact_match")
    assert max(map(len, wide)) > 80
    lines = summary_table(found, width=80)
    assert max(map(len, lines)) <= 80
    assert lines[0].split() == [
        *["evaluation", "rows", "new", "errors", "score", "metric", "value", "95%", "interval"]
    ]
    # the short names, one space between columns, and the long one cut in its middle
    assert lines[2] == "eval_ari…ong_name   60  60     16 exact_match   accuracy 0.7333 " + (
        "[0.6099, 0.8287]"
    )
    assert lines[3].split()[0] == "numeric_match"
    assert lines[4].split()[0] == "eval_stopper"


def test_the_summary_is_whole_when_it_fits(tmp_path):
    found = outcomes(tmp_path)
    assert summary_table(found, width=200) == summary_table(found, width=None)


def test_errors_are_listed_by_type_first(tmp_path):
    found = outcomes(tmp_path)
    labels = short_labels(o.label for o in found)
    lines = error_summary(found, "dotevals show e --errors", labels)
    assert lines == [
        "eval_arithmetic_with_a_long_name: 16 of 60 rows run this time errored",
        "      12  ValueError",
        "               1  ValueError: bad 0",
        "               1  ValueError: bad 5",
        "               1  ValueError: bad 10",
        "               9  (other ValueError messages)",
        "       4  TypeError: an evaluation must return a Score or a Result, got bool (True)",
        "every error, with its traceback: dotevals show e --errors",
    ]
    narrow = error_summary(found, "x", labels, width=40)
    assert narrow[6] == "       4  TypeError: an evaluation must…"
    assert max(map(len, narrow[1:-1])) <= 40


def test_an_evaluation_that_stopped_says_so_in_a_note_not_in_the_score_column(tmp_path):
    found = outcomes(tmp_path)
    stopped, interrupted = found
    stopped.error = TypeError("boom")
    interrupted.error = KeyboardInterrupt()
    skipped = EvaluationOutcome("eval_skipped", None, setup_error=pytest.skip.Exception("no"))
    lines = summary_table([*found, skipped])
    scores = {line.split()[0]: line for line in lines[2:] if line[:1] != " "}
    assert "stopped" not in "".join(lines) and "interrupted" not in "".join(lines)
    assert scores["eval_skipped"].split() == ["eval_skipped", *["-"] * 7]
    labels = {o.label: o.label for o in [*found, skipped]}
    assert summary_notes([*found, skipped], labels) == [
        f"{LONG}: stopped by TypeError: see its error above",
        f"{OTHER}: interrupted; its stored rows are kept, run the same command again to resume",
        "eval_skipped: skipped",
    ]


def test_short_labels_keep_evaluations_apart():
    labels = short_labels(
        [
            "evals/eval_math.py::eval_math",
            "a/eval_x.py::eval_model",
            "b/eval_x.py::eval_model",
            "x/a/eval_x.py::eval_model[gpt-None]",
            "eval_q.py::eval_q[gpt-None]",
        ]
    )
    assert labels == {
        "evals/eval_math.py::eval_math": "eval_math",
        "a/eval_x.py::eval_model": "a/eval_x.py::eval_model",
        "b/eval_x.py::eval_model": "b/eval_x.py::eval_model",
        "x/a/eval_x.py::eval_model[gpt-None]": "eval_model[gpt]",
        "eval_q.py::eval_q[gpt-None]": "eval_q[gpt]",
    }


def test_a_table_gives_way_from_its_widest_column():
    rows = [["a" * 40, "b" * 30, "value"]]
    table = format_table(["one", "two", "three"], rows, width=50, fit=[Fit(0), Fit(1)])
    header, rule, line = table.splitlines()
    assert max(map(len, (header, rule, line))) == 50
    # one space between columns; the wider column gave way first, then both in turn
    assert line == "a" * 20 + "… " + "b" * 21 + "… value"


# The dotevals command ---------------------------------------------------------------


@pytest.fixture
def long_store(tmp_path: Path) -> str:
    """Experiments "a" and "b" holding evaluations stored under long names."""
    url = f"json://{tmp_path / 'store'}"
    for experiment in ("a", "b"):
        found = outcomes(tmp_path / experiment)
        source = get_storage(f"json://{tmp_path / experiment}")
        target = get_storage(url)
        target.create_experiment(experiment)
        names = ("eval_arithmetic_with_a_long_name", "eval_stopper")
        for outcome, name in zip(found, names, strict=True):
            target.save_evaluation(experiment, EvaluationInfo(outcome.label, started_at=1.0))
            target.add_records(experiment, outcome.label, source.load_records("e", name))
    return url


def table_lines(out: str) -> list[str]:
    """The lines of the tables in ``out``: each header, its rule and its rows."""
    lines = out.splitlines()
    found = []
    for index, line in enumerate(lines):
        if line.startswith("-") and set(line) <= {"-", " "}:
            found.append(lines[index - 1])
            for row in lines[index:]:
                if not row:
                    break
                found.append(row)
    return found


@pytest.mark.parametrize(
    "command",
    [
        ("show", "a", "--storage"),
        ("show", "a", "--full", "--storage"),
        ("compare", "a", "b", "--storage"),
        ("compare", "a", "b", "--rows", "--storage"),
        ("list", "--storage"),
        ("datasets", "--verbose"),
    ],
)
def test_the_command_fits_80_columns(capsys, monkeypatch, long_store, command):
    monkeypatch.setenv("COLUMNS", "80")
    argv = [*command, long_store] if command[-1] == "--storage" else list(command)
    tables = table_lines(cli_output(capsys, *argv))
    assert tables and max(len(line) for line in tables) <= 80, "\n".join(tables)


def test_compare_too_wide_becomes_two_tables(capsys, monkeypatch, long_store):
    monkeypatch.setenv("COLUMNS", "80")
    out = cli_output(capsys, "compare", "a", "b", "--storage", long_store)
    headers = [line.split() for line in out.splitlines() if line.startswith("evaluation")]
    assert headers == [
        ["evaluation", "score", "metric", "A", "B", "B", "-", "A", "95%", "interval"],
        ["evaluation", "score", "paired", "rows", "right->wrong", "wrong->right"],
    ]
    stopper = [line.split()[:3] for line in out.splitlines() if line.startswith("eval_stopper ")]
    assert stopper == [
        ["eval_stopper", "exact_match", "accuracy"],
        ["eval_stopper", "exact_match", "3"],
    ]


def test_the_command_keeps_lines_whole_when_told_no_width(capsys, monkeypatch, long_store):
    monkeypatch.delenv("COLUMNS")  # output into a pipe: no terminal, no width
    out = cli_output(capsys, "show", "a", "--storage", long_store)
    assert f"{LONG}  exact_match    accuracy" in out
