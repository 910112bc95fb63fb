"""The ``@foreach`` decorator: a function scored over every row of a dataset.

::

    @foreach("question,answer", [("1+1", "2"), ("2+2", "4")])
    def eval_math(question, answer, model):
        return exact_match(model(question), answer)

Columns become the function's row arguments; every other parameter is a
pytest fixture (or a keyword argument of :func:`dotevals.run`). The decorated
function keeps a signature made of those other parameters only, so pytest
never mistakes a column for a missing fixture. Called with those values by
keyword (``eval_math(model=m)``), it runs over the whole dataset and returns
the :class:`~dotevals.models.EvaluationSummary`: its type is
:class:`EvaluationFunction`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from dotevals._declare.error_bound import parse_fail_on_error
from dotevals._declare.evaluation import (
    EvaluationSpec,
    attach,
    get_evaluation,
    parse_columns,
    parse_epochs,
    parse_reducers,
    parse_timeout,
)
from dotevals._declare.gates import gates_from_mapping
from dotevals._declare.retry_policy import make_policy
from dotevals.concurrency import AsyncStrategy, SyncStrategy
from dotevals.models import EvaluationSummary

if TYPE_CHECKING:
    import tenacity

    from dotevals.metrics import Reducer

__all__ = ["EvaluationFunction", "ForEach", "foreach", "get_evaluation"]


class EvaluationFunction(Protocol):
    """A ``@foreach`` function: called with the values of its non-column parameters
    by keyword, it runs over every row (as :func:`dotevals.run` does) and returns
    the summary."""

    def __call__(self, **fixtures: Any) -> EvaluationSummary: ...


#: What ``@foreach(...)`` applies to a function.
Decorator = Callable[[Callable[..., Any]], EvaluationFunction]


class ForEach:
    """A configured ``@foreach`` decorator.

    Args:
        retries: retries of connection errors and timeouts per row (default 2,
            so 3 calls in all, with exponential jitter), or a tenacity
            ``Retrying``/``AsyncRetrying`` object.
        concurrency: how rows are scheduled: an async strategy
            (:class:`~dotevals.concurrency.Adaptive` by default) for ``async def``
            evaluations, a sync one (:class:`~dotevals.concurrency.Sequential`
            by default) for plain functions.
        timeout: seconds one row may take, retries included; a row that runs
            longer is stopped and stored with a ``RowTimeoutError``.

    ``retries`` and ``concurrency`` read back as given (``retrying`` is the retry
    policy made of ``retries``).
    """

    def __init__(
        self,
        retries: int | tenacity.BaseRetrying | None = None,
        concurrency: SyncStrategy | AsyncStrategy | None = None,
        *,
        timeout: float | None = None,
    ):
        self.retries = retries
        self.retrying = make_policy(retries)
        self.concurrency = concurrency
        self.timeout = parse_timeout(timeout)

    def __call__(
        self,
        column_spec: str,
        dataset: Iterable[Any],
        *,
        fail_under: Mapping[str, float] | None = None,
        key: str | None = None,
        fail_on_error: bool | int | float | None = None,
        epochs: int | None = None,
        reducers: Sequence[str | Reducer] | None = None,
    ) -> Decorator:
        """Decorate a function scored over ``dataset``'s rows.

        ``fail_under`` maps ``"score"`` or ``"score:metric"`` to the lowest value
        the metric may have: below it, the evaluation's pytest item fails.
        ``key`` names the column whose value identifies each row (text or a whole
        number): a resumed run then matches rows by it wherever they are in the
        dataset, rather than by their place.
        ``fail_on_error`` bounds its errored rows, counted over every stored row:
        ``5`` fails it when more than 5 errored, ``0.1`` when more than 10 %,
        ``True`` when any did, ``False`` never; by default (None, unless the run
        sets ``--fail-on-error``) it fails when every stored row errored.
        ``epochs`` scores each row that many times (default: the run's ``--epochs``,
        else 1), each (row, epoch) stored as its own record; ``reducers`` turn a row's
        values over its epochs into one before the metrics run: names such as
        ``"mean"`` (the default), ``"median"``, ``"majority"``, ``"max"``, ``"min"``,
        ``"pass_at_5"`` (:func:`~dotevals.metrics.pass_at`), ``"pass_hat_3"``, or
        :class:`~dotevals.metrics.Reducer` objects.
        """
        __tracebackhide__ = True
        columns = parse_columns(column_spec)
        bound = parse_fail_on_error(fail_on_error)
        repeats = parse_epochs(epochs)

        def decorate(func: Callable[..., Any]) -> EvaluationFunction:
            __tracebackhide__ = True  # a mistake here is the user's line, not ours
            name = getattr(func, "__name__", repr(func))
            gates = gates_from_mapping(fail_under, name)
            evaluation = EvaluationSpec(
                func,
                columns,
                dataset,
                self.retrying,
                self.concurrency,
                self.timeout,
                gates,
                key=key,
                fail_on_error=bound,
                epochs=repeats,
                reducers=parse_reducers(reducers, name),
            )
            return _evaluation_function(evaluation)

        return decorate

    def __getattr__(self, name: str) -> Callable[..., Decorator]:
        """``foreach.<dataset>(split, **kwargs)``: a registered dataset's rows.

        A dataset without splits (``splits = []``) is named with no split:
        ``foreach.<dataset>()``.
        """
        if name.startswith("_"):
            raise AttributeError(name)
        from dotevals.datasets.registry import get_dataset  # only for a named dataset

        dataset_class = get_dataset(name)

        def registered(
            split: str | None = None,
            *,
            fail_under: Mapping[str, float] | None = None,
            fail_on_error: bool | int | float | None = None,
            epochs: int | None = None,
            reducers: Sequence[str | Reducer] | None = None,
            **kwargs: Any,
        ) -> Decorator:
            args = () if split is None else (split,)
            dataset = dataset_class(*args, **kwargs)
            columns = ",".join(dataset_class.columns)
            return self(
                columns,
                dataset,
                fail_under=fail_under,
                fail_on_error=fail_on_error,
                epochs=epochs,
                reducers=reducers,
            )

        registered.__name__ = name
        return registered


def _evaluation_function(evaluation: EvaluationSpec) -> EvaluationFunction:
    func = evaluation.func

    @functools.wraps(func)
    def run_evaluation(**fixtures: Any) -> EvaluationSummary:
        # here, on the first direct call: worker processes import this module to
        # unpickle evaluations, and the Runner brings pytest
        from dotevals.runners import run

        return run(run_evaluation, fixtures=fixtures)

    parameters = inspect.signature(func).parameters
    instance = [parameters["self"]] if evaluation.is_method else []
    run_evaluation.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        instance
        + [
            p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
            for name, p in parameters.items()
            if name in evaluation.fixture_names
        ]
    )
    attach(run_evaluation, evaluation)
    return run_evaluation


#: The default decorator: ``@foreach("col1,col2", dataset)``.
foreach = ForEach()
