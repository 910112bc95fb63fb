"""The run options: one table that every way of starting a run reads.

Each field of :class:`RunOptions` is one option: its name is the keyword of
``Runner(...)`` and ``dotevals.run(...)``, its type and default are the field's,
and its :class:`Option` entry gives the parser, the help text and the pytest
command line flags. The pytest plugin adds one flag set and one ini setting
(``dotevals_<name>``) per entry; ``RunOptions.parse`` validates every value in
one place, whatever it came from.

Adding an option is one ``option(...)`` field here; the code that uses it
reads ``runner.options.<name>``.

The table imports nothing heavy: the pytest plugin reads it in every pytest
session, so a parser that lives with the code it serves (the engine, the
storage) is named with :func:`~dotevals._util.lazy.lazy` and imported on its first
value. A ``None`` default is the parser's own default.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from dotevals._util.lazy import lazy
from dotevals.errors import ConfigurationError

if TYPE_CHECKING:
    from dotevals._declare.error_bound import ErrorBound
    from dotevals._declare.gates import Gate
    from dotevals.storage import Storage

__all__ = [
    "OPTIONS",
    "Option",
    "RunOptions",
    "RunOptionsKeywords",
    "RunnerOptions",
    "parse_samples",
    "parse_seed",
]

#: How an option takes its value on the command line: ``value`` (``--x VALUE``),
#: ``switch`` (``--x`` / ``--no-x``) or ``repeat`` (``--x A --x B``).
Kind = Literal["value", "switch", "repeat"]
_SAME = object()


@dataclass(eq=False)  # what a dataclass makes costs every pytest run that loads dotevals
class Option:
    """One row of the option table (the metadata of a :class:`RunOptions` field)."""

    help: str
    #: Turns a value of any source into the option's value; a bad one raises
    #: ConfigurationError with a one-line message. It accepts its own output.
    parse: Callable[[Any], Any]
    flags: tuple[str, ...]
    kind: Kind = "value"
    metavar: str | None = None
    #: Turns command line and ini text into what ``parse`` takes (default: as is).
    text: Callable[[str], Any] | None = None
    #: The default under pytest, when it differs from the keyword's default.
    pytest_default: Any = _SAME
    #: False for an option only the pytest plugin acts on (not a Runner keyword).
    keyword: bool = True
    #: Under pytest, applied to the ini value and the default with the project root
    #: (a relative path there is taken from the project root).
    in_project: Callable[[Any, Path], Any] | None = None
    #: Added only when no other installed plugin owns the flag: (flag, that plugin's module).
    alias: tuple[str, str] | None = None
    #: Filled in from the field: the option's name and its keyword default.
    name: str = ""
    default: Any = None

    @property
    def ini(self) -> str:
        """The ini setting: ``dotevals_<name>``."""
        return f"dotevals_{self.name}"

    @property
    def default_under_pytest(self) -> Any:
        return self.default if self.pytest_default is _SAME else self.pytest_default

    def cli_flags(self) -> list[str]:
        """The flags pytest gets: ``alias`` too unless its plugin is installed."""
        if self.alias is None or importlib.util.find_spec(self.alias[1]) is not None:
            return list(self.flags)
        return [*self.flags, self.alias[0]]


def option(default: Any, **spec: Any) -> Any:
    """A field of :class:`RunOptions`: its keyword ``default`` and its :class:`Option`."""
    return field(default=default, metadata={"option": Option(**spec)})


def parse_samples(value: int | None) -> int | None:
    """None (every row) or a whole number >= 0."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ConfigurationError(f"samples must be a whole number >= 0, got {value!r}")
    return value


def parse_seed(value: int | str) -> int:
    """The run's seed: a whole number >= 0 (default 0)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"seed must be a whole number >= 0, got {value!r:.40}")
    return value


def _whole_number_text(text: str) -> int | str:
    """``"3"`` -> 3; other text stays text, for ``parse_samples`` to refuse."""
    return int(text) if text.strip().isdigit() else text


def _experiment(value: str | None) -> str | None:
    from dotevals.storage.base import check_experiment_name

    return None if value is None else check_experiment_name(value)


def _storage(value: str | Storage | None) -> Storage:
    """The storage given, else the project's (found from the current directory as
    pytest finds its rootdir: see :mod:`dotevals.storage.location`)."""
    from dotevals.storage import get_storage
    from dotevals.storage.location import default_storage

    return get_storage(value or default_storage())


def _storage_in_project(value: str | None, root: Path) -> str:
    from dotevals.storage.registry import DEFAULT_STORAGE, resolve_storage

    return resolve_storage(value or DEFAULT_STORAGE, root)


def _cache_path_in_project(value: str | None, root: Path) -> str | None:
    """A relative cache path in the ini file is taken from the project root."""
    if value in (None, ""):
        return None
    path = Path(str(value)).expanduser()
    return str(path if path.is_absolute() else root / path)


def _llm(name: str) -> Callable[[Any], Any]:
    """A parser of :mod:`dotevals.llm.settings` (light: no provider, no asyncio)."""
    return lazy("dotevals.llm.settings", name)


def _gates(texts: Sequence[str | Gate]) -> tuple[Gate, ...]:
    """``SCORE=VALUE`` texts as gates, by key: the last one wins."""
    from dotevals._declare.gates import Gate, parse_gate

    gates = [text if isinstance(text, Gate) else parse_gate(text, "gate") for text in texts]
    return tuple({gate.key: gate for gate in gates}.values())


@dataclass(frozen=True, eq=False)
class RunOptions:
    """The options of one run, parsed. Build it with :meth:`parse`."""

    experiment: str | None = option(
        None,
        parse=_experiment,
        flags=("--experiment",),
        metavar="NAME",
        help="experiment to store results in and resume (default: a new ephemeral one)",
    )
    samples: int | None = option(
        None,
        parse=parse_samples,
        text=_whole_number_text,
        flags=("--samples",),
        metavar="N",
        help="run at most this many new rows per evaluation",
    )
    storage: Storage = option(
        None,
        parse=_storage,
        in_project=_storage_in_project,
        flags=("--storage",),
        metavar="URL",
        help="where results are stored: json://PATH or sqlite://PATH; a PATH without a scheme "
        "is json:// (default json://.dotevals in the project root, the directory of pytest's "
        "configuration file, else the current directory; a relative path in the ini file "
        "is taken from the project root)",
    )
    concurrent: bool = option(
        True,
        parse=bool,
        flags=("-C", "--concurrent"),
        kind="switch",
        pytest_default=False,
        help="run async evaluations concurrently with each other (--no-concurrent: one after "
        "another; the default in pytest, while Runner and dotevals.run default to concurrent)",
    )
    workers: int | str | None = option(
        None,
        parse=lazy("dotevals._engine.executors.sizing", "parse_workers"),
        flags=("--workers",),
        metavar="N|auto",
        help="worker processes for sync evaluations: a number or 'auto' (physical cores, "
        "capped by memory and rows); default: run them in the main process",
    )
    worker_memory: int = option(
        None,
        parse=lazy("dotevals._engine.executors.sizing", "parse_memory"),
        flags=("--worker-memory",),
        metavar="SIZE",
        help="memory one worker needs, used by --workers auto (e.g. 2GiB; default 512MiB)",
    )
    timeout: float | None = option(
        None,
        parse=lazy("dotevals._declare.evaluation", "parse_timeout"),
        flags=("--row-timeout",),
        alias=("--timeout", "pytest_timeout"),
        metavar="SECONDS",
        help="seconds one row may take (retries included) for evaluations whose ForEach sets "
        "no timeout; a row that runs longer is stored with a timeout error "
        "(--timeout is the same option when pytest-timeout, which owns --timeout, "
        "is not installed)",
    )
    executor: str = option(
        None,
        parse=lazy("dotevals._engine.executors.choose", "parse_executor"),
        flags=("--executor",),
        metavar="local|dask://HOST:PORT",
        help="where sync evaluations run with workers: 'local' (a process pool, the default) "
        "or 'dask://HOST:PORT' (a Dask cluster; needs dotevals[dask])",
    )
    progress: bool = option(
        True,
        parse=bool,
        flags=("--progress",),
        kind="switch",
        help="draw progress bars on a terminal (--no-progress: do not)",
    )
    fail_on_error: ErrorBound | None = option(
        None,
        parse=lazy("dotevals._declare.error_bound", "parse_fail_on_error"),
        flags=("--fail-on-error",),
        metavar="N|FRACTION|true|false",
        help="fail an evaluation when more than N of its stored rows errored, or more than "
        "FRACTION of them (0.1 or 10%%); true: any, false: never (default: fail when every "
        "stored row errored); for evaluations whose @foreach sets no fail_on_error",
    )
    epochs: int | None = option(
        None,
        parse=lazy("dotevals._declare.evaluation", "parse_epochs"),
        flags=("--epochs",),
        metavar="K",
        help="score each row K times, each (row, epoch) stored as its own record, for "
        "evaluations whose @foreach sets no epochs (default 1)",
    )
    seed: int = option(
        0,
        parse=parse_seed,
        flags=("--seed",),
        metavar="N",
        help="the run's seed, stored with its results; each (row, epoch) gets its own seed "
        "from it (dotevals.llm.current_row().seed) (default 0)",
    )
    max_cost: float | None = option(
        None,
        parse=lazy("dotevals._run.budget", "parse_max_cost"),
        flags=("--max-cost",),
        metavar="USD",
        help="stop starting rows once the experiment's stored rows cost USD dollars; a later "
        "run with a larger budget resumes",
    )
    max_tokens: int | None = option(
        None,
        parse=lazy("dotevals._run.budget", "parse_max_tokens"),
        text=_whole_number_text,
        flags=("--max-tokens",),
        metavar="N",
        help="stop starting rows once the experiment's stored rows used N tokens (input and "
        "output); a later run with a larger budget resumes",
    )
    fail_under: tuple[Gate, ...] = option(
        (),
        parse=_gates,
        flags=("--fail-under",),
        kind="repeat",
        metavar="SCORE=VALUE",
        keyword=False,
        help="fail an evaluation whose SCORE (its first metric, or SCORE:METRIC) is below "
        "VALUE over every stored row; repeatable (ini: space-separated)",
    )

    # The model of the ``llm`` fixture (docs/providers.md): pytest options, read by the
    # fixture; a script gives the same settings to dotevals.llm.OpenAIModel itself.
    model: str | None = option(
        None,
        parse=_llm("parse_model"),
        flags=("--model",),
        metavar="PROVIDER/NAME",
        keyword=False,
        help="the model the llm fixture calls, e.g. openai/gpt-4o-mini",
    )
    model_base_url: str | None = option(
        None,
        parse=_llm("parse_text"),
        flags=("--model-base-url",),
        metavar="URL",
        keyword=False,
        help="the address of an OpenAI-compatible server for the llm fixture, e.g. "
        "http://localhost:8000/v1 for vLLM (default: OPENAI_BASE_URL, else OpenAI's)",
    )
    model_temperature: float | None = option(
        None,
        parse=_llm("parse_temperature"),
        flags=("--model-temperature",),
        metavar="T",
        keyword=False,
        help="the llm fixture's sampling temperature (default: the server's)",
    )
    model_max_tokens: int | None = option(
        None,
        parse=_llm("parse_max_tokens"),
        flags=("--model-max-tokens",),
        metavar="N",
        keyword=False,
        help="the most tokens the llm fixture's model generates per call",
    )
    model_seed: int | None = option(
        None,
        parse=_llm("parse_seed"),
        flags=("--model-seed",),
        metavar="N",
        keyword=False,
        help="the llm fixture's sampling seed, for servers that take one",
    )
    model_rpm: float | None = option(
        None,
        parse=_llm("parse_rpm"),
        flags=("--model-rpm",),
        metavar="N",
        keyword=False,
        help="requests per minute to the llm fixture's model, shared by every evaluation "
        "of the run (default: no limit)",
    )
    model_tpm: float | None = option(
        None,
        parse=_llm("parse_tpm"),
        flags=("--model-tpm",),
        metavar="N",
        keyword=False,
        help="tokens per minute to the llm fixture's model (default: no limit)",
    )
    model_concurrency: int | None = option(
        None,
        parse=_llm("parse_concurrency"),
        flags=("--model-concurrency",),
        metavar="N",
        keyword=False,
        help="requests in flight to the llm fixture's model at most; 429 answers lower it "
        "for a while (default: 32)",
    )
    model_retries: int | None = option(
        None,
        parse=_llm("parse_retries"),
        flags=("--model-retries",),
        metavar="N",
        keyword=False,
        help="retries of one model call after a 429, a 5xx, a timeout or a connection "
        "error (default: 5)",
    )
    cache: str = option(
        "on",
        parse=_llm("parse_cache_mode"),
        flags=("--cache",),
        metavar="on|off|read-only|refresh",
        keyword=False,
        help="the llm fixture's response cache: on (read and write), off, read-only, or "
        "refresh (ask the model again and store its new answers)",
    )
    cache_path: str | None = option(
        None,
        parse=_llm("parse_text"),
        in_project=_cache_path_in_project,
        flags=("--cache-path",),
        metavar="PATH",
        keyword=False,
        help="the response cache file (default: .dotevals/cache.db beside the results)",
    )
    cache_expiry: float | None = option(
        None,
        parse=_llm("parse_expiry"),
        flags=("--cache-expiry",),
        metavar="DURATION",
        keyword=False,
        help="how long a cached answer is used, e.g. 3600, 12h or 7d (default: always)",
    )

    @classmethod
    def parse(cls, **given: Any) -> RunOptions:
        """Check every option given by keyword; the others take their defaults.

        A value that is already parsed (such as a Storage) is taken as it is.
        """
        values = {spec.name: given.get(spec.name, spec.default) for spec in OPTIONS}
        return cls(**{spec.name: spec.parse(values[spec.name]) for spec in OPTIONS})

    @classmethod
    def from_keywords(cls, who: str, **given: Any) -> RunOptions:
        """``parse`` for the keywords of ``who`` (``Runner``): pytest-only options are refused."""
        unknown = sorted(set(given) - KEYWORDS)
        if unknown:
            raise ConfigurationError(
                f"unknown {who} option {', '.join(unknown)}; "
                f"the options are {', '.join(sorted(KEYWORDS))}"
            )
        return cls.parse(**given)

    def keywords(self) -> dict[str, Any]:
        """The options a Runner takes, as keyword arguments."""
        return {name: getattr(self, name) for name in KEYWORDS}


class RunnerOptions(TypedDict, total=False):
    """The run options ``Runner(...)`` takes by keyword, as a type checker sees them
    (``samples`` and ``concurrent`` are parameters of their own there)."""

    experiment: str | None
    storage: str | Storage | None
    workers: int | str | None
    worker_memory: int | str | None
    timeout: float | str | None
    executor: str | None
    progress: bool
    fail_on_error: bool | int | float | str | None
    epochs: int | str | None
    seed: int | str
    max_cost: float | str | None
    max_tokens: int | str | None


class RunOptionsKeywords(RunnerOptions, total=False):
    """Every run option ``dotevals.run(...)`` and ``dotevals.arun(...)`` take by keyword;
    a test checks that its keys are those of :data:`KEYWORDS`."""

    samples: int | None
    concurrent: bool


#: The table: one row per option, with its name and keyword default filled in.
OPTIONS: tuple[Option, ...] = tuple(
    replace(item.metadata["option"], name=item.name, default=item.default)
    for item in fields(RunOptions)
)
#: The options ``Runner`` and ``dotevals.run`` take by keyword.
KEYWORDS = frozenset(spec.name for spec in OPTIONS if spec.keyword)


def split_keywords(given: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``given`` as (run options, the rest): an option name is never anything else."""
    options = {name: value for name, value in given.items() if name in KEYWORDS}
    return options, {name: value for name, value in given.items() if name not in KEYWORDS}
