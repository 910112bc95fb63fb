"""Storage backends by URL scheme: built-ins, ``register_storage`` and entry points."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dotevals._util.registry import Registry
from dotevals.errors import StorageError, UnknownStorageError
from dotevals.storage.base import Storage

__all__ = [
    "DEFAULT_STORAGE",
    "get_storage",
    "list_backends",
    "register",
    "register_storage",
    "resolve_storage",
    "storage_url",
]

DEFAULT_STORAGE = "json://.dotevals"
ENTRY_POINT_GROUP = "dotevals.storage"


def _backend(scheme: str, cls: Any) -> tuple[str, Callable[[str], Storage]]:
    """What opens a location of ``scheme``: a Storage class, or an adapter over a backend
    of the 0.23 interface (TypeError for a class of neither)."""
    if isinstance(cls, type) and issubclass(cls, Storage) and not inspect.isabstract(cls):
        return scheme.lower(), cls
    from dotevals.storage.compat import backend_factory

    return scheme.lower(), backend_factory(cls)


#: What opens a location, by scheme. A built-in backend's module is imported when a
#: URL of its scheme is opened.
_backends: Registry[Callable[[str], Storage]] = Registry(
    ENTRY_POINT_GROUP,
    "storage backend",
    builtins={
        "json": "dotevals.storage.json:JSONStorage",
        "sqlite": "dotevals.storage.sqlite:SQLiteStorage",
    },
    convert=_backend,
)


def register_storage(scheme: str, cls: type) -> None:
    """Make ``SCHEME://LOCATION`` URLs open ``cls(LOCATION)``.

    ``cls`` implements :class:`Storage`, or the results interface (``add_results``,
    ``get_results``...), which is then used through an adapter.
    """
    if not scheme or "://" in scheme:
        raise ValueError(f"invalid storage scheme {scheme!r}: give the bare name, e.g. 'json'")
    _backends.register(*_backend(scheme, cls))


#: ``register(name, cls)``: the same as :func:`register_storage`.
register = register_storage


def list_backends() -> list[str]:
    """The schemes storage URLs can use: built-ins, registered and installed backends."""
    return _backends.names()


def storage_url(url: str) -> str:
    """``url`` with its scheme: a bare path ``PATH`` means ``json://PATH``."""
    return url if "://" in url else f"json://{url}"


def resolve_storage(url: str, root: Path) -> str:
    """``url`` with a relative path of a built-in backend made absolute against ``root``."""
    scheme, _, location = storage_url(url).partition("://")
    if scheme.lower() not in ("json", "sqlite") or location in ("", ":memory:"):
        return storage_url(url)
    return f"{scheme}://{root / Path(location).expanduser()}"


def get_storage(url: str | Storage) -> Storage:
    """The storage a ``SCHEME://LOCATION`` URL (or a bare path, for ``json://``) names;
    a Storage is returned as is."""
    if isinstance(url, Storage):
        return url
    url = storage_url(url)
    scheme, _, location = url.partition("://")
    factory = _backends.get(scheme.lower())
    if factory is None:
        known = ", ".join(f"{s}://" for s in _backends)
        raise UnknownStorageError(
            f"unknown storage {url!r}: known schemes are {known} "
            f"(register more through the {ENTRY_POINT_GROUP!r} entry-point group)"
        )
    if not location:
        raise StorageError(f"storage URL {url!r} has no location: write {scheme}://PATH")
    storage = factory(location)
    storage.scheme = scheme.lower()
    return storage
