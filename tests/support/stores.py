"""Storage in the tests: where a test keeps it, and reading back what a run stored."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from dotevals.models import Record
from dotevals.storage import Storage, get_storage

#: The storage backends dotevals ships, for ``pytest.mark.parametrize("kind", KINDS)``.
KINDS = ["json", "sqlite"]


def storage_url(kind: str, directory: Path) -> str:
    """The URL of a storage of backend ``kind`` ("json" or "sqlite") kept in ``directory``."""
    if kind == "sqlite":
        return f"sqlite://{directory / 'results.db'}"
    return f"json://{directory / 'store'}"


@contextlib.contextmanager
def opened(url: str) -> Iterator[Storage]:
    """A storage of its own, as a separate reader has it; closed after."""
    storage = get_storage(url)
    try:
        yield storage
    finally:
        storage.close()


def stored_records(url: str, experiment: str, evaluation: str) -> list[Record]:
    """The newest record of each row of an evaluation."""
    with opened(url) as storage:
        return storage.load_records(experiment, evaluation)


def raw_item_ids(url: str, experiment: str, evaluation: str) -> list[int]:
    """Every stored record's item_id, in the order the records were written."""
    with opened(url) as storage:
        return [r.item_id for r in storage.iter_records(experiment, evaluation)]
