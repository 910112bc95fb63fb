"""Where a project keeps its results: its root and its configuration file, found from
the current directory the way pytest finds its rootdir and ini file.

pytest, the ``dotevals`` command, :func:`dotevals.run`, :func:`dotevals.load`, a
``Runner`` and ``dotevals.collect`` with a Runner all follow this one rule, so that
they agree on one storage for one project. From the current directory, then each
directory above it:

1. the first pytest configuration file found is the project's: ``pytest.toml``,
   ``.pytest.toml``, ``pytest.ini``, ``.pytest.ini`` (always), ``pyproject.toml``
   with a ``[tool.pytest.ini_options]`` or ``[tool.pytest]`` table, ``tox.ini``
   with a ``[pytest]`` section, ``setup.cfg`` with a ``[tool:pytest]`` section, in
   that order in each directory; the root is its directory;
2. else the nearest ``pyproject.toml``, as pytest 8.1 and later take it;
3. else the nearest directory with a ``setup.py``;
4. else the current directory.

The storage is ``dotevals_storage`` in the configuration file, a relative path
taken from the root; without it, ``json://.dotevals`` in the root.

This module imports no pytest (``dotevals.cli`` uses it); the pytest plugin
takes pytest's own rootdir where pytest found a configuration file
(:mod:`dotevals._pytest_bridge.project`), which is the same directory.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotevals.errors import ConfigurationError
from dotevals.storage.registry import DEFAULT_STORAGE, resolve_storage, storage_url

__all__ = [
    "CONFIG_FILES",
    "Project",
    "default_storage",
    "display_url",
    "find_project",
    "same_storage",
    "storage_option",
]

#: pytest's configuration files, in the order pytest prefers them in one directory.
CONFIG_FILES = (
    "pytest.toml",
    ".pytest.toml",
    "pytest.ini",
    ".pytest.ini",
    "pyproject.toml",
    "tox.ini",
    "setup.cfg",
)
#: The ini setting that names the storage.
STORAGE_SETTING = "dotevals_storage"


@dataclass(frozen=True)
class Project:
    """A project as found from ``start``: its root, its configuration file (None
    without one) and the settings of that file's pytest table."""

    root: Path
    config: Path | None
    start: Path
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def storage_setting(self) -> str | None:
        """``dotevals_storage`` in the configuration file, as written."""
        value = self.settings.get(STORAGE_SETTING)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise ConfigurationError(
                f"{STORAGE_SETTING} in {self.config} must be a storage URL such as "
                f"'sqlite://results/evals.db', got {value!r}"
            )
        return value.strip()

    @property
    def storage(self) -> str:
        """The project's storage URL, a relative path taken from the root."""
        return resolve_storage(self.storage_setting or DEFAULT_STORAGE, self.root)

    def how_found(self) -> str:
        """Where the storage comes from and how the root was found, for a message."""
        setting = self.storage_setting
        if setting is not None:
            return f"set by {STORAGE_SETTING} in {self.config}, from the project root {self.root}"
        if self.config is not None or (self.root / "setup.py").is_file():
            marker = self.config.name if self.config is not None else "setup.py"
            return f"the project's default: .dotevals in {self.root}, where {marker} is"
        return (
            f"the project's default: .dotevals in {self.root}, the current directory, since "
            "no pytest.ini, pyproject.toml, tox.ini, setup.cfg or setup.py is there or above it"
        )


def find_project(start: Path | None = None) -> Project:
    """The project ``start`` (default: the current directory) belongs to, found as
    pytest finds its rootdir and ini file (see the module docstring).

    ConfigurationError when a configuration file on the way cannot be read.
    """
    start = Path.cwd() if start is None else start.absolute()
    first_pyproject: Path | None = None
    for directory in (start, *start.parents):
        for name in CONFIG_FILES:
            path = directory / name
            if not path.is_file():
                continue
            if name == "pyproject.toml" and first_pyproject is None:
                first_pyproject = path
            settings = _pytest_settings(path)
            if settings is not None:
                return Project(directory, path, start, settings)
    if first_pyproject is not None:
        return Project(first_pyproject.parent, first_pyproject, start)
    for directory in (start, *start.parents):
        if (directory / "setup.py").is_file():
            return Project(directory, None, start)
    return Project(start, None, start)


def default_storage() -> str:
    """The storage URL of the project of the current directory."""
    return find_project().storage


def _pytest_settings(path: Path) -> dict[str, Any] | None:
    """The settings of the pytest table of a configuration file, None when the file
    has no pytest table (it is then not pytest's configuration file)."""
    try:
        if path.suffix == ".toml":
            return _toml_settings(path)
        return _ini_settings(path)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from None


def _toml_settings(path: Path) -> dict[str, Any] | None:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib

    document = tomllib.loads(path.read_text(encoding="utf-8"))
    if path.name in ("pytest.toml", ".pytest.toml"):  # pytest's own file: always its config
        table = document.get("pytest", {})
        return dict(table) if isinstance(table, dict) else {}
    tool = document.get("tool", {})
    pytest_table = tool.get("pytest") if isinstance(tool, dict) else None
    if not isinstance(pytest_table, dict):
        return None
    ini_options = pytest_table.get("ini_options")
    native = {k: v for k, v in pytest_table.items() if k != "ini_options"}
    if native:
        return native
    if not isinstance(ini_options, dict):
        return None
    # as pytest reads this table: every value a string, lists kept
    return {k: v if isinstance(v, list) else str(v) for k, v in ini_options.items()}


def _ini_settings(path: Path) -> dict[str, Any] | None:
    import iniconfig  # pytest's own ini parser, installed with pytest (it imports no pytest)

    try:
        parsed = iniconfig.IniConfig(str(path))
    except iniconfig.ParseError as exc:
        raise ValueError(str(exc)) from None
    section = "tool:pytest" if path.name == "setup.cfg" else "pytest"
    if section in parsed:
        return dict(parsed[section].items())
    return {} if path.name in ("pytest.ini", ".pytest.ini") else None


def display_url(url: str, cwd: Path | None = None) -> str:
    """``url`` as a person would type it from ``cwd``: a json:// or sqlite:// path in the
    current directory or below it relative (``json:///home/me/p/.dotevals`` is
    ``json://.dotevals`` in ``/home/me/p``), any other as it is."""
    scheme, _, location = storage_url(url).partition("://")
    if scheme.lower() not in ("json", "sqlite") or not Path(location).is_absolute():
        return url
    cwd = Path.cwd() if cwd is None else cwd
    try:
        relative = Path(location).relative_to(cwd)
    except ValueError:
        return url
    return f"{scheme}://{relative.as_posix()}" if relative.parts else url


def same_storage(a: str, b: str, cwd: Path | None = None) -> bool:
    """``a`` and ``b`` name the same storage (relative paths taken from ``cwd``)."""
    cwd = Path.cwd() if cwd is None else cwd
    return resolve_storage(a, cwd) == resolve_storage(b, cwd)


def storage_option(url: str) -> str:
    """The ``--storage`` option to repeat in a hint: empty when ``url`` is the storage
    the ``dotevals`` command finds by itself from the current directory."""
    try:
        if same_storage(url, default_storage()):
            return ""
    except ConfigurationError:  # an unreadable configuration file: name the storage
        pass
    return f" --storage {shlex.quote(display_url(url))}"
