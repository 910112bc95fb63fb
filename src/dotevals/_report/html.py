"""``dotevals report``: one self-contained HTML page of one or more experiments.

:func:`report_data` reads storage into plain data (dicts, lists, strings and
numbers); :func:`render` fills the Jinja2 template ``templates/report.html.j2``
with it. The page has no outside resources: styles, the filter script and the
SVG charts are inline, so it opens from disk without a server or a network.

With two experiments or more, each one after the first is compared with the
first (:func:`~dotevals.compare.compare_evaluation`), as ``dotevals compare
FIRST OTHER`` would.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from dotevals._declare.row_errors import error_message, group_by_type
from dotevals._report.format import ELLIPSIS, local_time, number, seconds, shorten, signed, usd
from dotevals.compare import compare_evaluation
from dotevals.models import EvaluationSummary, Record
from dotevals.storage import Storage
from dotevals.storage.base import EvaluationInfo
from dotevals.storage.naming import short_name
from dotevals.storage.reading import (
    accounts,
    find_experiment,
    first_reducer,
    metric_intervals,
    reduced_intervals,
    stored_reducers,
)

__all__ = ["MAX_ROWS", "render", "report_data"]

#: Rows of each evaluation the page holds by default (the first, in dataset order).
MAX_ROWS = 1000
#: Rows the page shows for each error type of an evaluation (the count covers all).
MAX_ERRORS_SHOWN = 20
#: Error types the page shows for each experiment's evaluation, the most frequent;
#: the rows of the others are shown together, as one more group.
MAX_ERROR_GROUPS = 10
#: Longer names, dataset values, model responses and errors are cut in the page.
MAX_TEXT = 300
#: A longer traceback is cut in the page, keeping its end (the innermost frames and
#: the error); it is also the most any other text of the page may hold.
MAX_DETAIL = 5000
#: Colours of the experiments, in the order given (then again from the first).
COLORS = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2")


def report_data(
    storage: Storage, url: str, experiments: Sequence[str], max_rows: int = MAX_ROWS
) -> dict[str, Any]:
    """Everything the page shows, as plain data.

    Each evaluation of any of ``experiments`` (in the order first stored) has
    its ``runs`` (one per experiment, None where that experiment lacks it),
    its ``metrics`` (for each score and metric, ``entries``: one per
    experiment, None or the metric's ``Estimate.to_dict()``: ``value``,
    ``stderr``, ``low``, ``high``, ``method``), its ``error_groups`` and its
    first ``max_rows`` ``rows`` (of ``total_rows``). An entry with numbers for
    ``low`` and ``high`` is drawn with an error bar and printed with its interval.
    ``comparisons`` holds each experiment after the first compared with the first.
    """
    infos = [find_experiment(storage, url, name) for name in experiments]
    stored = {e.name: storage.list_evaluations(e.name) for e in infos}
    names = list(dict.fromkeys(n for e in infos for n in stored[e.name]))
    loaded = {
        name: [
            storage.load_records(e.name, name) if name in stored[e.name] else None for e in infos
        ]
        for name in names
    }
    evaluations = [
        {
            "name": name,
            "short": short_name(name),
            "anchor": f"evaluation-{index}",
            **_summaries(storage, list(experiments), name, records),
            "error_groups": _error_groups(records),
            **_rows(records, max_rows),
        }
        for index, (name, records) in enumerate(loaded.items())
    ]
    return {
        "title": "dotevals report: " + ", ".join(experiments),
        "storage": url,
        "generated": local_time(datetime.now().timestamp(), seconds=False),
        "experiments": [
            {
                "name": e.name,
                "created": local_time(e.created_at, seconds=False),
                "color": COLORS[i % len(COLORS)],
            }
            for i, e in enumerate(infos)
        ],
        "evaluations": evaluations,
        "comparisons": [
            _comparison(loaded, 0, b, _reducers(storage, infos[0].name, names))
            for b in range(1, len(infos))
        ],
    }


def _summaries(
    storage: Storage, experiments: list[str], name: str, records: list[list[Record] | None]
) -> dict[str, Any]:
    """Each experiment's status, row and error counts for one evaluation, and its metrics."""
    runs: list[dict[str, Any] | None] = []
    values: dict[tuple[str, str], list[dict[str, Any] | None]] = {}
    for index, (experiment, rows) in enumerate(zip(experiments, records, strict=True)):
        if rows is None:
            runs.append(None)
            continue
        info = storage.evaluation_info(experiment, name)
        computed = EvaluationSummary(rows, stored_reducers(info))
        runs.append(_run(info, computed))
        reduced = reduced_intervals(info, computed) or {"": metric_intervals(info, computed)}
        for reducer, by_score in reduced.items():
            for score, by_metric in by_score.items():
                for metric, estimate in by_metric.items():
                    label = f"{metric} [{reducer}]" if reducer else metric
                    entries = values.setdefault((score, label), [None] * len(experiments))
                    entries[index] = estimate
    metrics = [
        {"score": score, "metric": metric, "entries": entries}
        for (score, metric), entries in values.items()
    ]
    return {"runs": runs, "metrics": metrics, "scale": _scale(metrics)}


def _run(info: EvaluationInfo | None, computed: EvaluationSummary) -> dict[str, Any]:
    """One experiment's evaluation: status, counts, latency, tokens and cost (the
    tokens' title gives them by model)."""
    spent = accounts(computed)
    latency = spent["latency"] or {}
    by_model = "; ".join(
        f"{model}: {u['input_tokens']} in, {u['output_tokens']} out"
        + (f", {usd(u['cost'])}" if u["cost"] is not None else "")
        for model, u in spent["usage"].items()
    )
    return {
        "status": info.status if info else "unknown",
        "rows": computed.rows,
        "epochs": computed.epochs,
        "errors": computed.errors,
        "p50": seconds(latency.get("p50")),
        "p95": seconds(latency.get("p95")),
        "tokens": spent["tokens"],
        "by_model": _short(by_model),
        "cost": usd(spent["cost"]) if spent["usage"] else None,
    }


def _reducers(storage: Storage, experiment: str, names: list[str]) -> dict[str, Any]:
    """The reducer each evaluation of ``experiment`` reports its metrics by (None without
    repeats), by name: what a comparison pairs."""
    return {name: first_reducer(storage.evaluation_info(experiment, name)) for name in names}


def _comparison(
    loaded: dict[str, list[list[Record] | None]], a: int, b: int, reducers: dict[str, Any]
) -> dict[str, Any]:
    """Experiment ``b`` against ``a`` (indexes), evaluation by evaluation: each
    evaluation both ran as ``EvaluationComparison.to_dict()`` (rows' values reduced by
    the reducer of A's evaluation) and the names of those only one ran."""
    sides = [(name, records[a], records[b]) for name, records in loaded.items()]
    return {
        "a": a,
        "b": b,
        "evaluations": [
            compare_evaluation(name, x, y, reducers.get(name)).to_dict()
            for name, x, y in sides
            if x is not None and y is not None
        ],
        "only_in_a": [name for name, x, y in sides if x is not None and y is None],
        "only_in_b": [name for name, x, y in sides if x is None and y is not None],
    }


def _scale(metrics: list[dict[str, Any]]) -> float:
    """Where the chart's axis ends: 1 for values within [0, 1], else a round number
    (1, 2, 2.5 or 5 times a power of ten) at or above the largest."""
    numbers = [
        entry[key]
        for m in metrics
        for entry in m["entries"]
        if entry is not None
        for key in ("value", "low", "high")
        if _is_number(entry.get(key))
    ]
    largest = max(numbers, default=1.0)
    if largest <= 1:
        return 1.0
    unit = 10.0 ** math.floor(math.log10(largest))
    return next(step * unit for step in (1, 2, 2.5, 5, 10) if largest <= step * unit)


def _is_number(value: Any) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond floats
        return False


def _error_groups(records: list[list[Record] | None]) -> list[dict[str, Any]]:
    """Each experiment's errored rows by error type, the most frequent first
    (``experiment`` is the experiment's index), at most ``MAX_ERROR_GROUPS`` types and
    then one group of the other types' rows."""
    groups = []
    for experiment, rows in enumerate(records):
        by_type = list(group_by_type(rows or ()).items())
        if len(by_type) > MAX_ERROR_GROUPS:
            others = [r for _, group in by_type[MAX_ERROR_GROUPS - 1 :] for r in group]
            by_type[MAX_ERROR_GROUPS - 1 :] = [("other error types", others)]
        for kind, group in by_type:
            groups.append(
                {
                    "experiment": experiment,
                    "type": kind,
                    "count": len(group),
                    "records": [
                        {"item_id": r.item_id, "input": _input(r), "detail": _detail(r)}
                        for r in group[:MAX_ERRORS_SHOWN]
                    ],
                }
            )
    return groups


def _detail(record: Record) -> str:
    """A failed row's traceback, or its error; a long one keeps its end."""
    text = (record.traceback or error_message(record)).rstrip()
    return text if len(text) <= MAX_DETAIL else ELLIPSIS + "\n" + text[2 - MAX_DETAIL :]


def _rows(records: list[list[Record] | None], max_rows: int) -> dict[str, Any]:
    """The first ``max_rows`` rows any experiment stored, each with every experiment's cell."""
    by_id = [{r.item_id: r for r in group or ()} for group in records]
    ids = sorted({item_id for group in by_id for item_id in group})
    rows = []
    for item_id in ids[:max_rows]:
        cells = [group.get(item_id) for group in by_id]
        first = next(r for r in cells if r is not None)
        states = {_state(r) for r in cells}
        rows.append(
            {
                "item_id": item_id,
                "input": _input(first),
                "errored": any(r is not None and r.failed for r in cells),
                "changed": len(states) > 1,
                "cells": [None if r is None else _row_cell(r) for r in cells],
            }
        )
    return {"rows": rows, "total_rows": len(ids)}


def _state(record: Record | None) -> str | None:
    """What a row came to in one experiment: its score values and whether it errored."""
    if record is None:
        return None
    scores = {s.name: s.value for s in record.result.scores}
    return json.dumps([record.failed, scores], sort_keys=True, default=str)


def _row_cell(record: Record) -> dict[str, Any]:
    response = record.result.model_response  # whatever the evaluation gave
    return {
        "scores": [
            {"name": _short(s.name), "text": _short(_value(s.value)), "kind": _kind(s.value)}
            for s in record.result.scores
        ],
        "response": None if response is None else _short(_value(response)),
        "error": _short(error_message(record)) if record.failed else None,
    }


def _input(record: Record) -> list[tuple[str, str]]:
    return [(_short(str(k)), _short(_value(v))) for k, v in record.dataset_row.items()]


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _kind(value: Any) -> str:
    """How a score value is coloured: ``true`` and ``false`` for booleans."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "other"


def _short(text: str) -> str:
    return shorten(text, MAX_TEXT)


def render(data: dict[str, Any]) -> str:
    """The page for :func:`report_data`'s data, every value escaped and no text longer
    than ``MAX_DETAIL``."""
    import jinja2  # only the report needs it: the pytest plugin and the other commands don't

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("dotevals._report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_bounded,
    )
    environment.filters["value"] = _metric_text
    environment.filters["signed"] = signed
    environment.filters["tick"] = lambda number: f"{number:.4g}"
    environment.tests["drawable"] = _is_number
    return environment.get_template("report.html.j2").render(data)


def _bounded(value: Any) -> Any:
    """What the page prints for ``value``: a text cut to ``MAX_DETAIL`` characters."""
    return shorten(value, MAX_DETAIL) if isinstance(value, str) else value


def _metric_text(value: Any) -> str:
    """A metric value as the terminal summary prints it."""
    return number(value) if _is_number(value) else _short(_value(value))
