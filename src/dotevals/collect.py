"""Collecting evaluation items from a script, without the pytest command line.

::

    from dotevals.collect import evaluation_items
    from dotevals.runners import Runner

    with evaluation_items(["evals/", "-k", "math"]) as items:
        runner = Runner(experiment_name="nightly")
        runner.run(items)
    print(runner.results)

Inside the ``with`` block pytest's session is alive, so conftest fixtures are
resolved when the Runner runs the items; it is closed when the block ends.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pytest

from dotevals._declare.evaluation import get_evaluation
from dotevals._pytest_bridge import internals
from dotevals.errors import ConfigurationError

__all__ = ["evaluation_items"]


@contextmanager
def evaluation_items(args: Sequence[str] = ()) -> Iterator[list[pytest.Item]]:
    """Collect with pytest's own arguments and yield the ``@foreach`` items found.

    ``args`` are what the pytest command line takes (paths, ``-k``, ``-m``, options).
    """
    config = internals.new_config(["-W", "ignore::pytest.PytestAssertRewriteWarning", *args])
    exitstatus: int = pytest.ExitCode.OK
    try:
        internals.configure(config)
        session = pytest.Session.from_config(config)
        config.hook.pytest_sessionstart(session=session)
        try:
            session.perform_collect()
            if session.testsfailed:
                raise ConfigurationError(
                    f"collecting {' '.join(args) or '.'} failed with {session.testsfailed} "
                    "error(s); run pytest --collect-only on the same arguments to see them"
                )
            yield [item for item in session.items if get_evaluation(getattr(item, "obj", None))]
        except BaseException:
            exitstatus = pytest.ExitCode.INTERNAL_ERROR
            raise
        finally:
            internals.setup_state(session).teardown_exact(None)
            config.hook.pytest_sessionfinish(session=session, exitstatus=exitstatus)
    finally:
        internals.unconfigure(config)
