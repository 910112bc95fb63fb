"""What the Runner runs: one job per evaluation, grouped by what may run together.

A job is an evaluation with where its fixture values come from: a pytest
item (pytest's fixtures) or a function with its values bound by keyword
(``functools.partial(eval_fn, model=...)``). Consecutive async jobs that
share their fixture scopes form a group the Runner may run concurrently.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import pytest

from dotevals._declare.evaluation import EvaluationSpec, get_evaluation
from dotevals._pytest_bridge.deferred import has_async_fixture
from dotevals._pytest_bridge.internals import higher_scoped_params
from dotevals._pytest_bridge.project import evaluation_key
from dotevals.errors import ConfigurationError

__all__ = ["Job", "Runnable", "group_jobs"]


@dataclass
class Job:
    """One evaluation to run: a pytest item, or a function with its fixture values."""

    name: str
    #: The name the evaluation is stored under (a pytest item's is its node id).
    storage_name: str
    evaluation: EvaluationSpec
    item: pytest.Item | None = None
    fixtures: dict[str, Any] = field(default_factory=dict)
    #: What its models say of themselves, by fixture name (set when its fixtures are set
    #: up; see :func:`models_metadata`).
    models: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, obj: Runnable) -> Job:
        if isinstance(obj, Job):
            return obj
        if isinstance(obj, pytest.Item):
            return cls._of_item(obj)
        fixtures: dict[str, Any] = {}
        if isinstance(obj, functools.partial):
            if obj.args:
                raise ConfigurationError(
                    "give the fixtures of an evaluation by keyword: "
                    "functools.partial(eval_fn, model=...)"
                )
            fixtures, obj = dict(obj.keywords), obj.func
        evaluation = get_evaluation(obj)
        if evaluation is None:
            raise ConfigurationError(
                f"{obj!r} is not an evaluation: decorate it with @foreach(...) first"
            )
        _check_fixtures(evaluation, fixtures)
        return cls(evaluation.name, evaluation.name, evaluation, fixtures=fixtures)

    @classmethod
    def _of_item(cls, item: pytest.Item) -> Job:
        evaluation = get_evaluation(getattr(item, "obj", None))
        if evaluation is None:
            raise ConfigurationError(f"{item.nodeid} is not a @foreach evaluation")
        instance = getattr(item, "instance", None)
        if evaluation.is_method and instance is not None:
            evaluation = evaluation.bound_to(instance)
        return cls(item.name, evaluation_key(item), evaluation, item=item)

    @property
    def needs_event_loop(self) -> bool:
        """Its rows or fixtures are async: it runs on an event loop."""
        return self.evaluation.is_async or (self.item is not None and has_async_fixture(self.item))

    def metadata(self) -> dict[str, Any]:
        """What the experiment stores about the evaluation."""
        func = self.evaluation.func
        return {
            "function": f"{func.__module__}.{func.__qualname__}",
            "columns": list(self.evaluation.columns),
            "dataset": type(self.evaluation.dataset).__name__,
            **({"nodeid": self.item.nodeid} if self.item is not None else {}),
            **({"models": dict(self.models)} if self.models else {}),
        }


def models_metadata(values: dict[str, Any], specs: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the evaluation's models say of themselves, by fixture name: each fixture
    value whose type has a ``__dotevals_metadata__()`` method (such as
    :class:`dotevals.llm.OpenAIModel`: its model, base URL and generate settings), and
    each fixture a worker builds whose function has a ``__dotevals_metadata__``
    attribute (the ``llm`` fixture)."""
    found: dict[str, Any] = {}
    for name, value in values.items():
        describe = getattr(type(value), "__dotevals_metadata__", None)
        if callable(describe):
            try:
                found[name] = describe(value)
            except Exception:  # a model that cannot describe itself is not recorded
                continue
    for name, spec in (specs or {}).items():
        describe = getattr(getattr(spec, "func", None), "__dotevals_metadata__", None)
        if callable(describe):
            try:
                described = describe()
            except Exception:
                continue
            if described is not None:
                found[name] = described
    return found


#: What a Runner runs: a pytest item, a (bound) ``@foreach`` function, or a Job.
Runnable: TypeAlias = pytest.Item | Callable[..., Any] | Job


def _check_fixtures(evaluation: EvaluationSpec, fixtures: dict[str, Any]) -> None:
    missing = [n for n in evaluation.fixture_names if n not in fixtures]
    unknown = [n for n in fixtures if n not in evaluation.fixture_names]
    problems = [
        *([f"missing value for {', '.join(missing)}"] if missing else []),
        *([f"{', '.join(unknown)} is neither a column nor a parameter"] if unknown else []),
    ]
    if problems:
        raise ConfigurationError(f"{evaluation.name}: " + "; ".join(problems))


def group_jobs(jobs: list[Job], concurrent: bool) -> list[list[Job]]:
    """Consecutive async jobs that may share the event loop go in one group."""
    groups: list[list[Job]] = []
    for job in jobs:
        last = groups[-1][-1] if groups else None
        if (
            concurrent
            and last is not None
            and job.evaluation.is_async
            and last.evaluation.is_async
            and _scope_key(job) == _scope_key(last)
        ):
            groups[-1].append(job)
        else:
            groups.append([job])
    return groups


def _scope_key(job: Job) -> object:
    """Items that may be set up side by side: same parent, same higher-scoped params."""
    if job.item is None:
        return None
    return (job.item.parent, higher_scoped_params(job.item))
