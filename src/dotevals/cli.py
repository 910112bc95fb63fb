"""The ``dotevals`` command: look at and manage stored experiments and datasets.

::

    dotevals list [--name SUBSTRING] [--storage URL]
    dotevals show EXPERIMENT [--evaluation NAME] [--full] [--errors] [--format table|json]
                  [--storage URL]
    dotevals compare EXP_A EXP_B [--evaluation NAME] [--rows] [--format table|json]
                     [--storage URL]
    dotevals report EXPERIMENT [EXPERIMENT ...] [-o FILE] [--max-rows N] [--storage URL]
    dotevals export EXPERIMENT [--evaluation NAME] [--format csv|jsonl] [-o FILE] [--storage URL]
    dotevals rename OLD NEW [--storage URL]
    dotevals delete EXPERIMENT [--storage URL]
    dotevals datasets [--verbose] [--name SUBSTRING]
    dotevals cache stats [--format table|json] [--cache-path PATH | --storage URL]
    dotevals cache prune --older-than DURATION [--cache-path PATH | --storage URL]
    dotevals cache clear [--model NAME] [--cache-path PATH | --storage URL]
    dotevals schema

Without ``--storage``, the command reads the storage pytest stores in: the
project is found from the current directory as pytest finds its rootdir and
ini file, and its storage is ``dotevals_storage`` there, else ``.dotevals`` in
the project root (see :mod:`dotevals.storage.location`). A storage given
without a scheme is a ``json://`` one (``--storage results`` is
``--storage json://results``). ``--evaluation`` takes an evaluation's stored
name or, when only one evaluation of the experiment has it, its short name: the
function name with its parameters, as the pytest summary prints it.

A command exits with 0 on success. Anything dotevals reports as wrong (an
unknown experiment, an unreadable storage, ...) is printed as
``error: <message>`` on stderr with exit code 1; usage errors exit with 2.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import textwrap
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import dotevals
from dotevals._declare.row_errors import group_by_type
from dotevals._report.format import local_time, printable, terminal_width
from dotevals._report.html import MAX_ROWS, render, report_data
from dotevals._report.text import (
    Fit,
    changed_rows_table,
    comparison_notes,
    comparison_table,
    format_table,
    interval_cell,
    usage_table,
)
from dotevals.compare import compare_evaluation
from dotevals.datasets import get_dataset, list_datasets
from dotevals.errors import ConfigurationError, DotevalsError
from dotevals.export import FORMATS, write_rows
from dotevals.intervals import Estimate
from dotevals.storage import DEFAULT_STORAGE, ExperimentInfo, Storage
from dotevals.storage.base import check_experiment_name
from dotevals.storage.location import display_url, find_project
from dotevals.storage.naming import storage_option
from dotevals.storage.reading import (
    accounts,
    evaluation_names,
    first_reducer,
    metric_intervals,
    reduced_intervals,
    stored_summary,
)
from dotevals.storage.reading import find_experiment as _experiment
from dotevals.storage.reading import open_storage as _open

__all__ = ["main"]


def _matches(name: str, substring: str | None) -> bool:
    return substring is None or substring.lower() in name.lower()


# Subcommands -------------------------------------------------------------
def cmd_list(args: argparse.Namespace) -> int:
    """Named experiments in one table, ephemeral ones under their own heading."""
    with _open(args.storage) as storage:
        experiments = [e for e in storage.experiments() if _matches(e.name, args.name)]
        counts = {e.name: len(storage.list_evaluations(e.name)) for e in experiments}
    if not experiments:
        matching = f" matching {args.name!r}" if args.name else ""
        print(f"No experiments{matching} found in {args.storage}.")
        return 0

    def table(group: list[ExperimentInfo]) -> str:
        rows = [[e.name, local_time(e.created_at), counts[e.name]] for e in group]
        headers = ["name", "created", "evaluations"]
        return format_table(headers, rows, right=[2], width=terminal_width(), fit=[Fit(0)])

    named = [e for e in experiments if not e.ephemeral]
    ephemeral = [e for e in experiments if e.ephemeral]
    if named:
        print(f"Experiments in {args.storage}\n\n{table(named)}")
    else:
        print(f"No named experiments in {args.storage}.")
    if ephemeral:
        print(f"\nEphemeral experiments (runs without --experiment)\n\n{table(ephemeral)}")
    return 0


def _evaluation_report(
    storage: Storage, experiment: str, evaluation: str, full: bool, errors: bool
) -> dict[str, Any]:
    """What ``show`` says about one evaluation, as JSON-ready data."""
    info, computed = stored_summary(storage, experiment, evaluation)
    records = computed.records
    report: dict[str, Any] = {
        "name": evaluation,
        "status": info.status if info else "unknown",
        "started_at": info.started_at if info else None,
        "ended_at": info.ended_at if info else None,
        "rows": computed.rows,
        "errors": computed.errors,
        "metrics": info.metrics
        if info is not None and info.metrics is not None
        else computed.metrics,
        "intervals": metric_intervals(info, computed),
        "metadata": info.metadata if info else {},
        "samples": computed.samples,
        "epochs": computed.epochs,
        **accounts(computed),
    }
    reduced = reduced_intervals(info, computed)
    if reduced:
        report["reduced"] = reduced
    if computed.metric_errors:  # metrics its values could not give
        report["metric_errors"] = computed.metric_errors
    if full:
        report["records"] = [r.to_dict() for r in records]
    if errors:
        report["errored_rows"] = [
            {"type": kind, "count": len(group), "records": [r.to_dict() for r in group]}
            for kind, group in group_by_type(records).items()
        ]
    return report


def _print_show(report: dict[str, Any]) -> None:
    created = local_time(report["created_at"])
    kind = "Ephemeral experiment" if report["ephemeral"] else "Experiment"
    print(f"{kind} {report['experiment']!r} in {report['storage']} (created {created})")
    evaluations = report["evaluations"]
    if not evaluations:
        print("\nNo evaluations yet.")
        return
    width = terminal_width()
    repeats = any("reduced" in e for e in evaluations)
    counts = ["rows", "epochs", "samples", "errors"] if repeats else ["rows", "errors"]
    print()
    print(
        format_table(
            ["evaluation", "status", "started", "ended", *counts],
            [
                [e["name"], e["status"], local_time(e["started_at"]), local_time(e["ended_at"])]
                + [e[count] for count in counts]
                for e in evaluations
            ],
            right=range(4, 4 + len(counts)),
            width=width,
            fit=[Fit(0, label=True)],
        )
    )
    metrics = [
        [e["name"], score, *([reducer] if repeats else []), metric, estimate["value"]]
        + [interval_cell(Estimate.from_dict(estimate))]
        for e in evaluations
        for reducer, by_score in (e.get("reduced") or {"": e["intervals"]}).items()
        for score, values in by_score.items()
        for metric, estimate in values.items()
    ]
    print()
    if metrics:
        headers = ["evaluation", "score", *(["reducer"] if repeats else []), "metric", "value"]
        fit = [Fit(0, label=True), Fit(1), Fit(len(headers) - 2)]
        right = [len(headers)]
        print(format_table([*headers, "95% interval"], metrics, right=right, width=width, fit=fit))
    else:
        print("No metrics yet.")
    usage = usage_table([(e["name"], e) for e in evaluations], width)
    if usage:
        print()
        print("\n".join(usage))
    for e in evaluations:
        for failure in e.get("metric_errors", ()):
            print(f"{e['name']}: {failure}")
    for e in evaluations:
        if "records" not in e:
            continue
        print(f"\nRecords of {e['name']!r} ({len(e['records'])})\n")
        epochs = e["epochs"] > 1  # a column of its own only with repeats
        rows = [
            [r["item_id"], *([r.get("epoch", 0)] if epochs else [])]
            + [
                json.dumps(r["dataset_row"], ensure_ascii=False, default=str),
                ", ".join(f"{s['name']}={s['value']}" for s in r["result"]["scores"]),
                r["error"] or r["result"]["error"],
            ]
            for r in e["records"]
        ]
        shift = int(epochs)
        headers = ["item_id", *(["epoch"] if epochs else []), "dataset_row", "scores", "error"]
        fit = [Fit(3 + shift, minimum=20), Fit(1 + shift, minimum=20), Fit(2 + shift, minimum=20)]
        print(format_table(headers, rows, right=list(range(1 + shift)), width=width, fit=fit))
    for e in evaluations:
        if "errored_rows" in e:
            _print_errors(e)


def _print_errors(evaluation: dict[str, Any]) -> None:
    """The errored rows of one evaluation by error type, each with its traceback."""
    groups = evaluation["errored_rows"]
    print(
        f"\nErrors of {evaluation['name']!r} ({evaluation['errors']} of {evaluation['rows']} rows)"
    )
    if not groups:
        print("\nNo errors.")
    for group in groups:
        rows = "row" if group["count"] == 1 else "rows"
        print(f"\n{group['type']} ({group['count']} {rows})")
        for r in group["records"]:
            row = json.dumps(r["dataset_row"], ensure_ascii=False, default=str)
            print(f"\n  row {r['item_id']}: {printable(row)}")
            detail = r.get("traceback") or r["error"] or r["result"]["error"]
            print(textwrap.indent(printable(detail.rstrip()), "    "))


def cmd_show(args: argparse.Namespace) -> int:
    """Status, rows, errors and metrics of each evaluation; every record with --full,
    the errored rows with their tracebacks with --errors."""
    with _open(args.storage) as storage:
        experiment = _experiment(storage, args.storage, args.experiment)
        names = evaluation_names(storage, args.storage, experiment.name, args.evaluation)
        report = {
            "experiment": experiment.name,
            "storage": args.storage,
            "created_at": experiment.created_at,
            "ephemeral": experiment.ephemeral,
            "evaluations": [
                _evaluation_report(storage, experiment.name, n, args.full, args.errors)
                for n in names
            ],
        }
    if args.format == "json":
        print(printable(json.dumps(report, indent=2, ensure_ascii=False, default=str)))
    else:
        _print_show(report)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """A's and B's metrics per evaluation and score, the paired difference B - A with its
    95 % interval, and the rows that changed."""
    with _open(args.storage) as storage:
        a = _experiment(storage, args.storage, args.experiment_a).name
        b = _experiment(storage, args.storage, args.experiment_b).name
        names_a = evaluation_names(storage, args.storage, a, args.evaluation)
        names_b = evaluation_names(storage, args.storage, b, args.evaluation)
        common = [n for n in names_a if n in names_b]
        comparisons = [
            compare_evaluation(
                n,
                storage.load_records(a, n),
                storage.load_records(b, n),
                first_reducer(storage.evaluation_info(a, n)),
            )
            for n in common
        ]
    only_a = [n for n in names_a if n not in names_b]
    only_b = [n for n in names_b if n not in names_a]
    if args.format == "json":
        report = {
            "a": a,
            "b": b,
            "storage": args.storage,
            "evaluations": [c.to_dict(args.rows) for c in comparisons],
            "evaluations_only_in_a": only_a,
            "evaluations_only_in_b": only_b,
        }
        print(printable(json.dumps(report, indent=2, ensure_ascii=False, default=str)))
        return 0
    print(f"A: {a!r}, B: {b!r} in {args.storage}\n")
    width = terminal_width()
    if comparisons:
        print(comparison_table(comparisons, width))
        print()
        print("\n".join(comparison_notes(comparisons, width)))
    else:
        print("No evaluation is in both experiments.")
    for side, names in (("A", only_a), ("B", only_b)):
        if names:
            print(f"evaluations only in {side}: {printable(', '.join(names))}")
    if args.rows:
        for c in comparisons:
            for score in c.scores:
                changed = len(score.regressed) + len(score.improved)
                print(f"\nRows of {c.name!r} whose {printable(score.score)} changed ({changed})\n")
                if changed:
                    print(changed_rows_table(score, width))
    return 0


@contextmanager
def _output(path: str, storage: Storage) -> Iterator[TextIO]:
    """``path`` opened for writing text; ConfigurationError when it cannot be written,
    or is a file of ``storage`` (checked before anything is truncated)."""
    if storage.holds(Path(path)):
        raise ConfigurationError(
            f"-o {path} is inside the storage {storage.url}: write the file outside it"
        )
    try:
        with open(path, "w", encoding="utf-8", newline="") as out:
            yield out
    except OSError as exc:  # a missing directory, no permission, a full disk
        raise ConfigurationError(f"cannot write {path}: {exc.strerror or exc}") from None


def cmd_report(args: argparse.Namespace) -> int:
    """One self-contained HTML page of the experiments' results."""
    if len(set(args.experiments)) < len(args.experiments):
        raise ConfigurationError("an experiment is given twice: give each experiment once")
    if args.max_rows < 1:
        raise ConfigurationError(f"--max-rows must be at least 1, got {args.max_rows}")
    with _open(args.storage) as storage:
        data = report_data(storage, args.storage, args.experiments, args.max_rows)
    page = render(data)
    with _output(args.output, storage) as out:
        out.write(page)
    path = Path(args.output).resolve()
    print(f"Wrote the report of {', '.join(map(repr, args.experiments))} to {path}")
    print(f"Open it in a browser: {path.as_uri()}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """The experiment's rows as CSV or JSON Lines, on stdout or in a file."""
    with _open(args.storage) as storage:
        experiment = _experiment(storage, args.storage, args.experiment)
        names = evaluation_names(storage, args.storage, experiment.name, args.evaluation)
        if args.output is None:
            write_rows(storage, experiment.name, names, args.format, sys.stdout)
            return 0
        with _output(args.output, storage) as out:
            count = write_rows(storage, experiment.name, names, args.format, out)
    rows = "row" if count == 1 else "rows"
    print(f"Wrote {count} {rows} of {experiment.name!r} to {args.output}.")
    return 0


def cmd_rename(args: argparse.Namespace) -> int:
    """Rename an experiment; the new name must be free."""
    with _open(args.storage, write=True) as storage:
        _experiment(storage, args.storage, args.old)
        check_experiment_name(args.new)
        if args.new == args.old:
            raise ConfigurationError(f"experiment {args.old!r} already has that name")
        if storage.experiment_exists(args.new):
            raise ConfigurationError(
                f"experiment {args.new!r} already exists in {args.storage}: choose another "
                f"name, or delete it first with "
                f"'dotevals delete {shlex.quote(args.new)}{storage_option(args.storage)}'"
            )
        from dotevals.storage.writer import ExperimentStore  # the run lock: no run holds it

        ExperimentStore(storage, args.old).rename(args.new)
    print(f"Renamed experiment {args.old!r} to {args.new!r} in {args.storage}.")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    """Delete an experiment with all its evaluations and records."""
    with _open(args.storage, write=True) as storage:
        _experiment(storage, args.storage, args.experiment)
        count = len(storage.list_evaluations(args.experiment))
        from dotevals.storage.writer import ExperimentStore  # the run lock: no run holds it

        ExperimentStore(storage, args.experiment).delete()
    plural = "" if count == 1 else "s"
    print(
        f"Deleted experiment {args.experiment!r} ({count} evaluation{plural}) from {args.storage}."
    )
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    """The registered datasets; --verbose adds their columns, splits and rows."""
    names = [n for n in list_datasets() if _matches(n, args.name)]
    if not names:
        print(f"No datasets matching {args.name!r}." if args.name else "No datasets registered.")
        return 0
    rows = []
    for name in names:
        cls = get_dataset(name)
        description = (cls.__doc__ or "").strip().partition("\n")[0]
        if args.verbose:
            columns, splits = ", ".join(cls.columns), ", ".join(cls.splits)
            rows.append([name, columns, splits, cls.num_rows, description])
        else:
            rows.append([name, description])
    width = terminal_width()
    if args.verbose:
        headers = ["name", "columns", "splits", "rows", "description"]
        fit = [Fit(4, minimum=20), Fit(1, minimum=16), Fit(2)]
        print(format_table(headers, rows, right=[3], width=width, fit=fit))
    else:
        print(format_table(["name", "description"], rows, width=width, fit=[Fit(1, minimum=20)]))
    return 0


def _cache(args: argparse.Namespace) -> Any:
    """The response cache the command works on: ``--cache-path``, else the default one
    beside ``--storage``'s results (see :func:`dotevals.llm.settings.default_cache_path`)."""
    from dotevals.llm.cache import ResponseCache
    from dotevals.llm.settings import default_cache_path

    if args.cache_path:
        path = Path(args.cache_path)
    else:
        from dotevals.storage import get_storage

        path = default_cache_path(get_storage(args.storage))
    return ResponseCache(path, mode="read-only")


def _cache_errors() -> Any:
    """A damaged or locked cache file as a one-line error."""
    import sqlite3

    @contextmanager
    def errors() -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise DotevalsError(f"the response cache cannot be read or changed: {exc}") from None

    return errors()


def cmd_cache_stats(args: argparse.Namespace) -> int:
    """The cache file, its size, and its entries by model."""
    cache = _cache(args)
    with _cache_errors():
        report = cache.stats()
    if args.format == "json":
        print(printable(json.dumps(report, indent=2, ensure_ascii=False)))
        return 0
    print(f"Response cache {report['path']} ({report['bytes'] / 1e6:.1f} MB)")
    if not report["models"]:
        print("\nNo entries.")
        return 0
    rows = [
        [m["model"], m["base_url"], m["entries"], m["total_tokens"] or "-"]
        + [local_time(m["oldest"]), local_time(m["newest"])]
        for m in report["models"]
    ]
    headers = ["model", "base url", "entries", "tokens", "oldest", "newest"]
    print()
    print(format_table(headers, rows, right=[2, 3]))
    print(f"\n{report['entries']} entries")
    return 0


def cmd_cache_prune(args: argparse.Namespace) -> int:
    """Delete the entries older than --older-than."""
    from dotevals.llm.settings import parse_expiry

    seconds = parse_expiry(args.older_than)
    if seconds is None:
        raise ConfigurationError("--older-than takes a duration such as 3600, 12h or 7d")
    cache = _cache(args)
    with _cache_errors():
        count = cache.prune(seconds)
        cache.vacuum()
    print(
        f"Deleted {count} {'entry' if count == 1 else 'entries'} older than {args.older_than} "
        f"from {cache.path}."
    )
    return 0


def cmd_cache_clear(args: argparse.Namespace) -> int:
    """Delete every entry, or those of one model."""
    cache = _cache(args)
    with _cache_errors():
        count = cache.clear(args.model)
        cache.vacuum()
    of = f" of model {args.model!r}" if args.model else ""
    print(f"Deleted {count} {'entry' if count == 1 else 'entries'}{of} from {cache.path}.")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    """The JSON Schema of a stored record."""
    from dotevals.storage.schema import record_schema

    print(json.dumps(record_schema(), indent=2))
    return 0


# Entry point -------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    storage = argparse.ArgumentParser(add_help=False)
    storage.add_argument(
        "--storage",
        metavar="URL",
        help="where the experiments are, e.g. sqlite://results.db; a path without a scheme "
        "is a json:// one (default: the project's, as pytest stores them: dotevals_storage "
        f"in the project's pytest configuration file, else {DEFAULT_STORAGE} in the "
        "project root)",
    )
    parser = argparse.ArgumentParser(
        prog="dotevals", description="Look at and manage dotevals experiments and datasets."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {dotevals.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("list", parents=[storage], help="list the experiments")
    p.add_argument("--name", metavar="SUBSTRING", help="only experiments whose name contains it")
    p.set_defaults(run=cmd_list)

    p = commands.add_parser("show", parents=[storage], help="show the results of an experiment")
    p.add_argument("experiment", metavar="EXPERIMENT")
    p.add_argument(
        "--evaluation",
        metavar="NAME",
        help="only this evaluation: its stored name, or its short name if no other has it",
    )
    p.add_argument("--full", action="store_true", help="also print every record")
    p.add_argument(
        "--errors",
        action="store_true",
        help="also print the errored rows with their tracebacks, by error type",
    )
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(run=cmd_show)

    p = commands.add_parser("compare", parents=[storage], help="compare two experiments row by row")
    p.add_argument("experiment_a", metavar="EXP_A")
    p.add_argument("experiment_b", metavar="EXP_B")
    p.add_argument("--evaluation", metavar="NAME", help="only this evaluation")
    p.add_argument("--rows", action="store_true", help="also list the rows that changed")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(run=cmd_compare)

    p = commands.add_parser(
        "report", parents=[storage], help="write an HTML page of the results of experiments"
    )
    p.add_argument("experiments", metavar="EXPERIMENT", nargs="+", help="one or more, side by side")
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        default="report.html",
        help="where to write the page (default: report.html)",
    )
    p.add_argument(
        "--max-rows",
        metavar="N",
        type=int,
        default=MAX_ROWS,
        help=f"rows of each evaluation in the page, the first ones (default: {MAX_ROWS})",
    )
    p.set_defaults(run=cmd_report)

    p = commands.add_parser(
        "export", parents=[storage], help="write the rows of an experiment as CSV or JSON Lines"
    )
    p.add_argument("experiment", metavar="EXPERIMENT")
    p.add_argument("--evaluation", metavar="NAME", help="only this evaluation")
    p.add_argument("--format", choices=FORMATS, default="csv", help="default: csv")
    p.add_argument(
        "-o", "--output", metavar="FILE", help="where to write (default: standard output)"
    )
    p.set_defaults(run=cmd_export)

    p = commands.add_parser("rename", parents=[storage], help="rename an experiment")
    p.add_argument("old", metavar="OLD")
    p.add_argument("new", metavar="NEW")
    p.set_defaults(run=cmd_rename)

    p = commands.add_parser("delete", parents=[storage], help="delete an experiment")
    p.add_argument("experiment", metavar="EXPERIMENT")
    p.set_defaults(run=cmd_delete)

    p = commands.add_parser("datasets", help="list the registered datasets")
    p.add_argument("--verbose", "-v", action="store_true", help="add columns, splits and rows")
    p.add_argument("--name", "-n", metavar="SUBSTRING", help="only datasets whose name contains it")
    p.set_defaults(run=cmd_datasets)

    cache = argparse.ArgumentParser(add_help=False, parents=[storage])
    cache.add_argument(
        "--cache-path",
        metavar="PATH",
        help="the response cache file (default: .dotevals/cache.db beside --storage's results)",
    )
    p = commands.add_parser("cache", help="look at and clean the model response cache")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = actions.add_parser("stats", parents=[cache], help="entries and size, by model")
    a.add_argument("--format", choices=["table", "json"], default="table")
    a.set_defaults(run=cmd_cache_stats)
    a = actions.add_parser(
        "prune", parents=[cache], help="delete the entries older than a duration"
    )
    a.add_argument(
        "--older-than", metavar="DURATION", required=True, help="e.g. 3600, 12h, 7d or 2w"
    )
    a.set_defaults(run=cmd_cache_prune)
    a = actions.add_parser("clear", parents=[cache], help="delete every entry")
    a.add_argument("--model", metavar="NAME", help="only the entries of this model (its name)")
    a.set_defaults(run=cmd_cache_clear)
    p = commands.add_parser("schema", help="print the JSON Schema of a stored record")
    p.set_defaults(run=cmd_schema)
    return parser


def _show_warning(message: Warning | str, *args: Any, **kwargs: Any) -> None:
    print(f"warning: {printable(str(message))}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the ``dotevals`` command with ``argv`` (default: ``sys.argv[1:]``); the exit code."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error argparse has printed
        return exc.code if isinstance(exc.code, int) else 0
    with warnings.catch_warnings():
        # e.g. a broken dataset entry point: shown as one line, never raised
        warnings.simplefilter("default")
        warnings.showwarning = _show_warning
        try:
            if "storage" in args and args.storage is None:
                args.storage = display_url(find_project().storage)
            return args.run(args)
        except DotevalsError as exc:
            print(f"error: {printable(str(exc))}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130
        except BrokenPipeError:  # piped into a command that stopped reading, e.g. `| head`
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1


if __name__ == "__main__":
    raise SystemExit(main())
