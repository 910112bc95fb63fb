"""Objects by name: built in, registered in this process, or from an entry-point group.

Every plugin kind of dotevals (evaluators, metrics, datasets, storage backends,
model providers) is found through one :class:`Registry`, so they all follow the
same rules:

- a name is looked for among what is registered or built in, then among the
  entry points of that name, then among all of the group's entry points (an
  entry point may name an object differently); entry points are loaded once, so
  later misses cost a dict look-up;
- what holds a name keeps it: an entry point never replaces a registered or
  built-in object, nor an earlier entry point. One whose name is taken is not
  loaded, and one that loads an object the registry keeps under a taken name
  (a dataset's own ``name``) is dropped; either gives a warning naming both,
  unless it names the very object that holds the name;
- an entry point that fails to load, or that ``convert`` refuses, gives one
  :class:`UserWarning` and is skipped; it never makes a look-up raise.

Built-ins are named ``"module:attribute"`` and imported on first use, so that a
registry costs nothing to create.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

__all__ = ["Registry"]

T = TypeVar("T")

#: Turns what an entry point loaded into (the name it is kept under, the object);
#: raises TypeError or ValueError for an object that is not of the registry's kind.
Convert = Callable[[str, Any], "tuple[str, T]"]


class Registry(Generic[T]):
    """Objects of one ``kind`` by name; see the module docstring for the rules."""

    def __init__(
        self,
        group: str,
        kind: str,
        *,
        builtins: Mapping[str, str] | None = None,
        convert: Convert[T] | None = None,
    ):
        self.group = group
        self.kind = kind
        #: What is registered or loaded so far, without any entry-point look-up.
        self.loaded: dict[str, T] = {}
        self._builtins = dict(builtins or {})
        self._convert = convert
        #: Where each loaded name comes from (``module:attribute``), for duplicates.
        self._origins: dict[str, str] = {}
        self._seen: set[tuple[str, str]] = set()
        self._from_entry_points: set[str] = set()
        self._all_loaded = False

    # Registering -------------------------------------------------------
    def register(self, name: str, obj: T) -> None:
        """Give ``name`` to ``obj``, replacing what had it."""
        self.loaded[name] = obj
        self._origins[name] = _origin(obj)

    def unregister(self, name: str) -> None:
        """Forget ``name``: the next look-up finds it again, if anything still has it."""
        self.loaded.pop(name, None)
        self._origins.pop(name, None)
        self._from_entry_points.discard(name)
        self._seen = {seen for seen in self._seen if seen[0] != name}
        self._all_loaded = False

    def reset(self) -> None:
        """Forget everything registered and loaded; built-ins and entry points are found
        again at the next look-up."""
        self.loaded.clear()
        self._origins.clear()
        self._seen.clear()
        self._from_entry_points.clear()
        self._all_loaded = False

    @contextmanager
    def isolated(self) -> Iterator[None]:
        """For tests: the block starts as a new process would (nothing loaded from an
        entry point yet), and what it registers or loads is forgotten after it."""
        saved = (dict(self.loaded), dict(self._origins), set(self._seen))
        kept = (set(self._from_entry_points), self._all_loaded)
        for name in self._from_entry_points:
            self.loaded.pop(name, None)
            self._origins.pop(name, None)
        self._seen = {seen for seen in self._seen if seen[0] in self._builtins}
        self._from_entry_points = set()
        self._all_loaded = False
        try:
            yield
        finally:
            self.loaded, self._origins, self._seen = saved
            self._from_entry_points, self._all_loaded = kept

    # Looking up --------------------------------------------------------
    def get(self, name: str) -> T | None:
        """The object called ``name``, or None."""
        if name not in self.loaded:
            self._load_builtin(name)
        if name not in self.loaded and not self._all_loaded:
            self._load(self._entry_points(name))
            if name not in self.loaded:
                self.load_all()
        return self.loaded.get(name)

    def __getitem__(self, name: str) -> T:
        found = self.get(name)
        if found is None and name not in self.loaded:
            raise KeyError(name)
        return self.loaded[name]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self.loaded or self.get(name) is not None)

    def names(self) -> list[str]:
        """Every name, built-ins and entry points loaded, in the order they were added."""
        self.load_all()
        return list(self.loaded)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self.names()))

    def __len__(self) -> int:
        return len(self.names())

    def load_all(self) -> None:
        """Load every built-in and every entry point of the group, once."""
        if self._all_loaded:
            return
        self._all_loaded = True
        for name in self._builtins:
            self._load_builtin(name)
        self._load(self._entry_points())

    def __repr__(self) -> str:
        return f"<{self.kind} registry {sorted(self.loaded)}, entry points {self.group!r}>"

    def module_getattr(self, module: str) -> Callable[[str], T]:
        """A ``__getattr__`` for ``module`` that finds the names it lacks in this registry."""

        def __getattr__(name: str) -> T:
            if name.startswith("__"):  # the import system asking: no entry point is read
                raise AttributeError(f"module {module!r} has no attribute {name!r}")
            found = self.get(name)
            if found is None:
                raise AttributeError(
                    f"no {self.kind} named {name!r} in {module}: it is neither built in nor the "
                    f"name of an entry point in the {self.group!r} group (is the plugin "
                    f"installed?). Known: {', '.join(self)}"
                )
            return found

        return __getattr__

    # Loading -----------------------------------------------------------
    def _load_builtin(self, name: str) -> None:
        spec = self._builtins.get(name)
        if spec is None or (name, spec) in self._seen:
            return
        self._seen.add((name, spec))
        module, _, attribute = spec.partition(":")
        self._add(name, getattr(importlib.import_module(module), attribute), spec)

    def _entry_points(self, name: str | None = None) -> Iterable[EntryPoint]:
        from importlib.metadata import entry_points

        try:
            if not _any_declares(self.group):  # the usual case, read in a third of the time
                return ()
            if name is None:
                return entry_points(group=self.group)
            return entry_points(group=self.group, name=name)
        except Exception as exc:  # broken metadata somewhere on sys.path
            self._warn(f"the {self.group!r} entry points could not be listed: {exc}")
            return ()

    def _load(self, found: Iterable[EntryPoint]) -> None:
        for ep in found:
            if (ep.name, ep.value) in self._seen:
                continue
            self._seen.add((ep.name, ep.value))
            if ep.name in self.loaded or ep.name in self._builtins:
                self._load_builtin(ep.name)
                self._taken(ep.name, ep.value, ep.value)
                continue  # not even loaded: what holds the name stays
            try:
                added = self._add(ep.name, ep.load(), ep.value)
            except Exception as exc:
                self._warn(
                    f"cannot load {self.kind} {ep.name!r} ({ep.value}) from the {self.group!r} "
                    f"entry points: {type(exc).__name__}: {exc}"
                )
            else:
                if added is not None:
                    self._from_entry_points.add(added)

    def _add(self, name: str, obj: Any, origin: str) -> str | None:
        """Keep what an entry point or built-in loaded, unless its name is taken; the name
        it is kept under."""
        if self._convert is not None:
            name, obj = self._convert(name, obj)
        if name in self.loaded:
            self._taken(name, origin, _origin(obj))
            return None
        self.loaded[name] = obj
        self._origins[name] = origin
        return name

    def _taken(self, name: str, origin: str, same: str) -> None:
        """Say that what ``origin`` gives is dropped: ``name`` is held by another object
        (silent when the holder's origin is ``origin`` or ``same``)."""
        holder = self._origins.get(name)
        if holder not in (origin, same):
            self._warn(
                f"{self.kind} {name!r} from {origin} ignored: the name is already taken by {holder}"
            )

    def _warn(self, text: str) -> None:
        warnings.warn(text, UserWarning, stacklevel=5)


def _origin(obj: Any) -> str:
    """``module:qualified name`` of ``obj`` (a class or function defined again has the
    same origin)."""
    return f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', repr(obj))}"


def _any_declares(group: str) -> bool:
    """Whether the entry-point file of an installed distribution names ``group``: a look
    at each file's text, without parsing every file as listing the entry points does."""
    from importlib.metadata import distributions

    return any(group in (dist.read_text("entry_points.txt") or "") for dist in distributions())
