"""Exceptions raised by dotevals. Each message says what was wrong and what to do.

Every error dotevals raises on purpose is a :class:`DotevalsError`, but one:
:class:`RowTimeoutError`, raised inside a row's own code at its timeout, is a
``BaseException`` so that the row's ``except Exception`` does not swallow it.
"""


class DotevalsError(Exception):
    """Base class of every error dotevals raises on purpose."""


class ConfigurationError(DotevalsError, ValueError):
    """An option, argument or decorator call that cannot work as given."""


class DatasetError(DotevalsError, ValueError):
    """A dataset or one of its rows does not fit the evaluation's columns."""


class StorageError(DotevalsError):
    """Storage cannot be opened, read or written."""


class StorageIOError(StorageError, OSError):
    """Reading or writing storage failed in the operating system (a missing directory,
    a full disk, a denied permission): ``except OSError`` catches it too."""


class UnknownStorageError(StorageError, ValueError):
    """A storage URL names a scheme no backend is registered for."""


class _NotStored(StorageError, KeyError):
    """Something asked for is not stored."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ExperimentNotFoundError(_NotStored):
    """An experiment that does not exist was asked for."""


class EvaluationNotFoundError(_NotStored):
    """An evaluation that does not exist was asked for."""


class ExperimentExistsError(StorageError):
    """An experiment cannot take a name another experiment has."""


class ExperimentInUseError(StorageError):
    """Another process is running the same experiment."""


class ClusterLostError(DotevalsError):
    """The cluster running the rows went away or stopped working mid-run."""


class RowTimeoutError(BaseException):
    """A row ran longer than its evaluation's timeout (stored as that row's error).

    Raised in the row's code at its deadline. Like ``KeyboardInterrupt`` and
    ``asyncio.CancelledError`` it is a ``BaseException``, not a
    :class:`DotevalsError`: an ``except Exception`` in the row's code lets it
    through, so that the row stops. Catch it by its name.
    """


class RowExitError(BaseException):
    """A row called ``os._exit`` in the process scoring it (stored as that row's error).

    Raised in the row's code in place of the exit, so that the process, and the
    rows it has still to score, go on. A ``BaseException`` like
    :class:`RowTimeoutError`; a row that catches it is stored with it all the same.
    """


class WorkerDiedError(DotevalsError):
    """The worker process scoring a row died (stored as that row's error)."""


class FixtureError(DotevalsError):
    """A fixture failed to be set up or torn down in a worker process; the message
    holds the traceback of the fixture's own code."""


class RowsFailedError(DotevalsError):
    """Every row an evaluation ran this time errored: the evaluation fails."""


class TransferError(DotevalsError):
    """A row's result could not pass between a worker and the main process (stored as
    that row's error)."""


class MetricError(DotevalsError, ValueError):
    """A metric cannot be computed from the values of its score (text under ``mean()``)."""


class GateFailedError(DotevalsError):
    """A metric of an evaluation is below its ``--fail-under`` / ``fail_under`` threshold."""
