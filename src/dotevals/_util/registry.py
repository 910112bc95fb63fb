"""Objects by name: those registered in this process, then an entry-point group's.

The evaluator and metric registries are instances. Entry points are looked up
only when a name is asked for that is not registered yet, so importing a module
that holds a registry stays cheap.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

__all__ = ["PluginRegistry"]

T = TypeVar("T")


class PluginRegistry(Mapping[str, T]):
    """A read-only mapping of names to objects, filled by :meth:`register` and
    by the entry points of ``group``.

    A name missing from the registered ones is looked for among the entry points
    of that name, then among all of the group's entry points (an entry point may
    be named differently from the object it loads), which are loaded once: later
    misses cost a dict look-up. Listing the registry loads every entry point.
    An entry point that fails to load gives a :class:`UserWarning` and is skipped.
    """

    def __init__(self, group: str, kind: str):
        self.group = group
        self.kind = kind
        #: What is registered in this process so far, without entry-point look-ups.
        self.loaded: dict[str, T] = {}
        self._all_loaded = False
        self._broken: set[str] = set()

    def register(self, name: str, obj: T) -> None:
        """Register ``obj`` under ``name``, replacing what had that name."""
        self.loaded[name] = obj

    def load_plugins(self) -> None:
        """Load every entry point of the group, once."""
        if not self._all_loaded:
            self._all_loaded = True
            self._load(self._entry_points())

    def __getitem__(self, name: str) -> T:
        if name not in self.loaded and not self._all_loaded:
            self._load(self._entry_points(name))
            if name not in self.loaded:
                self.load_plugins()
        return self.loaded[name]

    def __iter__(self) -> Iterator[str]:
        self.load_plugins()
        return iter(sorted(self.loaded))

    def __len__(self) -> int:
        self.load_plugins()
        return len(self.loaded)

    def __repr__(self) -> str:
        return f"<{self.kind} registry {sorted(self.loaded)}, entry points {self.group!r}>"

    def module_getattr(self, module: str) -> Callable[[str], T]:
        """A ``__getattr__`` for ``module`` that finds the names it lacks in this registry."""

        def __getattr__(name: str) -> T:
            if name.startswith("__"):
                raise AttributeError(f"module {module!r} has no attribute {name!r}")
            try:
                return self[name]
            except KeyError:
                raise AttributeError(
                    f"no {self.kind} named {name!r}: it is neither built in nor the name of "
                    f"an entry point in the {self.group!r} group (is the plugin installed?). "
                    f"Known: {', '.join(self)}"
                ) from None

        return __getattr__

    def _entry_points(self, name: str | None = None) -> Iterable[EntryPoint]:
        from importlib.metadata import entry_points

        if name is None:
            return entry_points(group=self.group)
        return entry_points(group=self.group, name=name)

    def _load(self, found: Iterable[EntryPoint]) -> None:
        for ep in found:
            if ep.name in self.loaded or ep.name in self._broken:  # seen, or a duplicate
                continue
            try:
                self.loaded[ep.name] = ep.load()
            except Exception as exc:
                self._broken.add(ep.name)
                warnings.warn(
                    f"cannot load {self.kind} {ep.name!r} ({ep.value}) from the "
                    f"{self.group!r} entry points: {type(exc).__name__}: {exc}",
                    stacklevel=4,
                )
