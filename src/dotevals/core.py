"""The decorator and the result types under one roof, for ``from dotevals.core import ...``,
and :func:`run_evaluation`, dotevals 0.23's way to run a function over a dataset.

The names re-exported here live in their own modules: :class:`~dotevals.foreach.ForEach`
and ``foreach`` in :mod:`dotevals.foreach`, the result types in :mod:`dotevals.models`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from dotevals.foreach import ForEach, foreach
from dotevals.models import EvaluationSummary, Record, Result, Score

if TYPE_CHECKING:
    import tenacity

    from dotevals.concurrency import AsyncStrategy, SyncStrategy
    from dotevals.sessions import SessionManager

__all__ = ["EvaluationSummary", "ForEach", "Record", "Result", "Score", "foreach", "run_evaluation"]


async def run_evaluation(
    eval_fn: Callable[..., Any],
    column_spec: str,
    dataset: Iterable[Any],
    session_manager: SessionManager | None = None,
    samples: int | None = None,
    retries: int | tenacity.BaseRetrying | None = None,
    concurrency: SyncStrategy | AsyncStrategy | None = None,
    **fixtures: Any,
) -> EvaluationSummary:
    """Score ``eval_fn`` over every row of ``dataset`` and return the summary.

    The rows are run as ``@ForEach(retries, concurrency)(column_spec, dataset)``
    runs them, ``fixtures`` being the values of the function's other parameters,
    and at most ``samples`` new rows. They are stored in the storage, experiment
    and evaluation of ``session_manager`` (resumed if it has rows); without one,
    under the function's name in a new ephemeral experiment of the default
    storage. The error that stops the evaluation is raised.
    """
    from dotevals._run.jobs import Job  # the Runner brings pytest: only when running
    from dotevals.runners import Runner, outcome_summary

    evaluation = ForEach(retries, concurrency)(column_spec, dataset)(eval_fn)
    job = Job.of(functools.partial(evaluation, **fixtures))
    if session_manager is None:
        runner = Runner(samples=samples)
    else:
        name = session_manager.current_evaluation
        job = dataclasses.replace(job, name=name, storage_name=name)
        runner = Runner(
            session_manager.current_experiment, samples, storage=session_manager.storage
        )
    await runner.run_evaluations([job])
    return outcome_summary(runner)
