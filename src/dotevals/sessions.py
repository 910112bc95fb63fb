"""``SessionManager``: the rows of one evaluation written from code, as in dotevals 0.23.

::

    manager = SessionManager("eval_math", experiment_name="baseline")
    manager.start_evaluation()
    manager.add_results([Record(Result(exact_match(answer, "4")), 0, {"q": "2+2"})])
    manager.finish_evaluation()
    manager.get_results()  # the newest record of each row

It writes through the storage's dotevals 0.23 methods (``create_evaluation``,
``add_results``...; see :class:`dotevals.storage.Storage`), so ``dotevals
show`` and ``dotevals.load`` read what it wrote. :func:`dotevals.core.run_evaluation`
runs a function over a dataset into its evaluation.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from dotevals.models import Evaluation, EvaluationStatus, Record
from dotevals.storage import DEFAULT_STORAGE, Storage, get_storage
from dotevals.storage.base import check_experiment_name
from dotevals.storage.provenance import git_commit
from dotevals.storage.writer import ephemeral_name

__all__ = ["SessionManager"]


class SessionManager:
    """One evaluation of one experiment in one storage.

    Args:
        evaluation_name: the evaluation's name.
        experiment_name: its experiment, created if it does not exist; None makes
            a new ephemeral experiment.
        storage: a storage URL (default ``json://.dotevals``) or a Storage.
    """

    def __init__(
        self,
        evaluation_name: str,
        experiment_name: str | None = None,
        storage: Storage | str | None = None,
    ):
        self.storage = get_storage(storage or DEFAULT_STORAGE)
        ephemeral = experiment_name is None
        self.current_experiment = (
            ephemeral_name() if experiment_name is None else check_experiment_name(experiment_name)
        )
        self.current_evaluation = evaluation_name
        self.storage.create_experiment(self.current_experiment, ephemeral=ephemeral)

    def start_evaluation(self) -> None:
        """Create the evaluation (with the git commit in its metadata), or mark the one
        stored as running again: its stored rows stay."""
        if self.storage.load_evaluation(self.current_experiment, self.current_evaluation):
            self._set_status(EvaluationStatus.RUNNING)
            return
        commit = git_commit()
        evaluation = Evaluation(
            self.current_evaluation,
            EvaluationStatus.RUNNING,
            started_at=time.time(),
            metadata={"git_commit": commit} if commit else {},
        )
        self.storage.create_evaluation(self.current_experiment, evaluation)

    def add_results(self, results: Sequence[Record]) -> None:
        """Store records (a row stored again keeps its newest record)."""
        self.storage.add_results(self.current_experiment, self.current_evaluation, results)

    def get_results(self) -> list[Record]:
        """The newest record of each row, in row order."""
        return self.storage.get_results(self.current_experiment, self.current_evaluation)

    def finish_evaluation(self, success: bool = True) -> None:
        """Mark the evaluation completed (or failed)."""
        self._set_status(EvaluationStatus.COMPLETED if success else EvaluationStatus.FAILED)

    def _set_status(self, status: EvaluationStatus) -> None:
        self.storage.update_evaluation_status(
            self.current_experiment, self.current_evaluation, status
        )
