"""Storage backends by URL scheme: built-ins, ``register_storage`` and entry points."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path

from dotevals._util.lazy import lazy
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

#: What opens a location, by scheme: a Storage class, or an adapter over a backend.
#: A built-in backend's module is imported when a URL of its scheme is opened.
_backends: dict[str, Callable[[str], Storage]] = {
    "json": lazy("dotevals.storage.json", "JSONStorage"),
    "sqlite": lazy("dotevals.storage.sqlite", "SQLiteStorage"),
}
_entry_points_loaded = False


def register_storage(scheme: str, cls: type) -> None:
    """Make ``SCHEME://LOCATION`` URLs open ``cls(LOCATION)``.

    ``cls`` implements :class:`Storage`, or the results interface (``add_results``,
    ``get_results``...), which is then used through an adapter.
    """
    from dotevals.storage.compat import backend_factory

    factory = backend_factory(cls)
    if not scheme or "://" in scheme:
        raise ValueError(f"invalid storage scheme {scheme!r}: give the bare name, e.g. 'json'")
    _backends[scheme.lower()] = factory


#: ``register(name, cls)``: the same as :func:`register_storage`.
register = register_storage


def list_backends() -> list[str]:
    """The schemes storage URLs can use: built-ins, registered and installed backends."""
    _load_entry_points()
    return list(_backends)


def _load_entry_points() -> None:
    """Register the ``dotevals.storage`` entry points, once; a broken one only warns."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name.lower() in _backends:  # built-in, registered already, or a duplicate
            continue
        try:
            register_storage(ep.name, ep.load())
        except Exception as exc:
            warnings.warn(
                f"cannot load storage backend {ep.name!r} ({ep.value}): {exc}",
                stacklevel=3,
            )


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
    if factory is None:  # an installed backend: entry points never replace a known scheme
        _load_entry_points()
        factory = _backends.get(scheme.lower())
    if factory is None:
        known = ", ".join(f"{s}://" for s in sorted(_backends))
        raise UnknownStorageError(
            f"unknown storage {url!r}: known schemes are {known} "
            f"(register more through the {ENTRY_POINT_GROUP!r} entry-point group)"
        )
    if not location:
        raise StorageError(f"storage URL {url!r} has no location: write {scheme}://PATH")
    storage = factory(location)
    storage.scheme = scheme.lower()
    return storage
