"""Model providers: models that must be started or connected before they are evaluated.

A provider package exposes a :class:`ModelProvider` subclass through the entry-point
group ``dotevals.model_providers``. The entry point's *name* becomes the name of a
session-scoped pytest fixture that yields one instance of the provider; every
:class:`ModelHandle` that instance handed out and that is still active is torn down
at the end of the session. An entry point may instead name a pytest fixture that a
plugin of the package defines. A ``model_providers`` fixture gives all of them by name.

See :class:`ModelProvider` for a complete example and ``docs/providers.md`` for the
user guide.
"""

from __future__ import annotations

import functools
import types
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any

import pytest

__all__ = [
    "ENTRY_POINT_GROUP",
    "PLUGIN_NAME",
    "ModelHandle",
    "ModelProvider",
    "load_model_providers",
    "register_fixtures",
]

#: Entry-point group that provider packages declare their provider classes in.
ENTRY_POINT_GROUP = "dotevals.model_providers"

#: Name under which :func:`register_fixtures` registers its plugin object.
PLUGIN_NAME = "dotevals-model-providers"

#: Name of the fixture that returns every provider instance by name.
ALL_PROVIDERS_FIXTURE = "model_providers"


class ModelHandle:
    """A model that a :class:`ModelProvider` has set up, until it is torn down.

    ``resource_id`` identifies the resource for its ``manager`` (the provider that
    created it), ``model`` is whatever the evaluation talks to (a client, a URL, a
    pipeline...). :meth:`teardown` releases the resource through the manager exactly
    once; the handle is also an async context manager that tears down on exit::

        async with await provider.setup("my-model") as handle:
            ...
    """

    def __init__(self, resource_id: str, model: Any, manager: ModelProvider):
        self.resource_id = resource_id
        self.model = model
        self.manager = manager
        self._active = True

    @property
    def is_active(self) -> bool:
        """True until :meth:`teardown` has been called."""
        return self._active

    async def teardown(self) -> None:
        """Release the resource: ``await manager.teardown(resource_id)``, only once.

        The handle stops being active as soon as teardown starts, so a second call
        (or a concurrent one) does nothing, even if the provider's teardown raised.
        """
        if not self._active:
            return
        self._active = False
        await self.manager.teardown(self.resource_id)

    async def __aenter__(self) -> ModelHandle:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.teardown()

    def __repr__(self) -> str:
        state = "active" if self._active else "torn down"
        return f"<ModelHandle {self.resource_id!r} of {type(self.manager).__name__} ({state})>"


class ModelProvider(ABC):
    """Starts or connects to models for evaluations, and releases them afterwards.

    Subclass it, implement :meth:`setup` and :meth:`teardown`, and expose the class
    through the ``dotevals.model_providers`` entry-point group. The class is
    instantiated with no arguments, once per pytest session (once per worker with
    pytest-xdist). Example, a provider that starts one local server per model::

        # my_provider/__init__.py
        import itertools

        from dotevals.providers import ModelHandle, ModelProvider


        class LocalServerProvider(ModelProvider):
            def __init__(self):
                self._servers = {}
                self._ids = itertools.count()

            async def setup(self, resource_spec: str, **config) -> ModelHandle:
                server = await start_server(resource_spec, port=config.get("port", 8000))
                resource_id = f"{resource_spec}-{next(self._ids)}"
                self._servers[resource_id] = server
                return ModelHandle(resource_id, server.client(), self)

            async def teardown(self, resource_id: str) -> None:
                server = self._servers.pop(resource_id, None)
                if server is not None:
                    await server.stop()

    declared in the provider package's ``pyproject.toml``:

    .. code-block:: toml

        [project.entry-points."dotevals.model_providers"]
        local_server = "my_provider:LocalServerProvider"

    and used in an evaluation by requesting the fixture named after the entry point::

        # test_eval.py
        import asyncio

        from dotevals.metrics import accuracy
        from dotevals.models import Result, Score


        def test_capital(local_server):
            async def run():
                handle = await local_server.setup("tiny-llm", port=8123)
                try:
                    answer = await handle.model.complete("Capital of France?")
                finally:
                    await handle.teardown()
                return Result(Score("exact", answer.strip() == "Paris", [accuracy()]))

            result = asyncio.run(run())
            assert result.scores[0].value

    Handles that are not torn down by the evaluation are torn down when the session
    ends (see :func:`register_fixtures`).
    """

    @abstractmethod
    async def setup(self, resource_spec: str, **config: Any) -> ModelHandle:
        """Start or connect to the model named by ``resource_spec``; return its handle."""

    @abstractmethod
    async def teardown(self, resource_id: str) -> None:
        """Release the resource that :meth:`setup` returned under ``resource_id``."""


def load_model_providers() -> dict[str, type[ModelProvider] | str]:
    """Return the installed providers by entry-point name.

    An entry point names a :class:`ModelProvider` subclass, or a pytest fixture
    that gives a provider (a plugin that defines the fixture itself, in a module
    registered under ``pytest11``): then the value is the fixture's name. An entry
    point that fails to load, or that names something else, is skipped with a
    :class:`UserWarning`; it never makes this raise. When several entry points
    share a name, the first one found wins.
    """
    from dotevals._util.registry import Registry  # only once a session is configured

    providers: Registry[type[ModelProvider] | str] = Registry(
        ENTRY_POINT_GROUP, "model provider", convert=_provider_or_fixture
    )
    providers.load_all()
    return dict(providers.loaded)


def _provider_or_fixture(name: str, obj: Any) -> tuple[str, type[ModelProvider] | str]:
    """A provider class as is; a pytest fixture as its name."""
    if isinstance(obj, type) and issubclass(obj, ModelProvider):
        return name, obj
    from dotevals._pytest_bridge.internals import fixture_marker  # only for an entry point

    marker = fixture_marker(obj)
    if marker is not None:
        return name, marker.name or getattr(obj, "name", None) or obj.__name__
    raise TypeError(
        f"{obj!r} is neither a subclass of dotevals.providers.ModelProvider nor a pytest fixture"
    )


def _track_handles(provider: ModelProvider, handles: list[ModelHandle]) -> None:
    """Record in ``handles`` every :class:`ModelHandle` that ``provider.setup`` returns.

    The bound ``setup`` is shadowed on the instance by a wrapper, so the instance keeps
    its own class (``type(provider) is cls``).
    """
    original_setup = provider.setup

    @functools.wraps(original_setup)
    async def setup(resource_spec: str, **config: Any) -> ModelHandle:
        handle = await original_setup(resource_spec, **config)
        if isinstance(handle, ModelHandle):
            handles.append(handle)
        return handle

    provider.setup = setup  # type: ignore[method-assign]


async def _teardown_all(handles: list[ModelHandle]) -> None:
    """Tear down the still active ``handles``, newest first; re-raise the first error."""
    first_error: BaseException | None = None
    for handle in reversed(handles):
        if not handle.is_active:
            continue
        try:
            await handle.teardown()
        except Exception as exc:
            if first_error is None:
                first_error = exc
    handles.clear()
    if first_error is not None:
        raise first_error


def _provider_fixture(name: str, cls: type[ModelProvider]) -> Callable[..., Any]:
    def provider_fixture() -> Iterator[ModelProvider]:
        provider = cls()
        handles: list[ModelHandle] = []
        _track_handles(provider, handles)
        yield provider
        from dotevals._run.loop_free import on_a_loop_of_its_own  # asyncio: only now

        on_a_loop_of_its_own(_teardown_all(handles))

    provider_fixture.__name__ = provider_fixture.__qualname__ = f"provider_{name}"
    provider_fixture.__doc__ = f"Model provider {cls.__module__}.{cls.__qualname__} ({name!r})."
    return pytest.fixture(scope="session", name=name)(provider_fixture)


def _all_providers_fixture(fixtures: dict[str, str]) -> Callable[..., Any]:
    """``model_providers``: ``{entry-point name: provider}``, from ``{name: fixture name}``."""

    def model_providers(request: pytest.FixtureRequest) -> dict[str, Any]:
        providers = {}
        for name, fixture in fixtures.items():
            try:
                providers[name] = request.getfixturevalue(fixture)
            except pytest.FixtureLookupError:
                warnings.warn(
                    f"dotevals: model provider {name!r} names the fixture {fixture!r}, which no "
                    "plugin defines; register its module in the 'pytest11' entry-point group",
                    stacklevel=1,
                )
        return providers

    model_providers.__doc__ = "Every installed model provider instance, by entry-point name."
    return pytest.fixture(scope="session", name=ALL_PROVIDERS_FIXTURE)(model_providers)


def _config_warning(config: pytest.Config, warning: Warning) -> None:
    """Report ``warning`` in pytest's warnings summary, obeying ``-W``/``filterwarnings``.

    When those turn it into an error, stop pytest with a usage error (a clear one-line
    message) rather than an internal error.
    """
    try:
        config.issue_config_time_warning(warning, stacklevel=3)
    except Warning as exc:
        raise pytest.UsageError(
            f"{exc} (a warning turned into an error by -W/filterwarnings)"
        ) from None


def register_fixtures(config: pytest.Config) -> None:
    """Register the model-provider fixtures with pytest (idempotent).

    Registers, under the plugin name ``"dotevals-model-providers"``, a namespace
    holding:

    * for each provider loaded by :func:`load_model_providers`, a session fixture
      named after its entry point. It yields one instance of the provider class
      (created with no arguments) whose ``setup`` is wrapped to remember the handles
      it returns; when the session ends, every one of them still active is torn down
      (newest first) with ``await handle.teardown()``, run by ``asyncio.run`` (or,
      should an event loop be running in that thread, by ``asyncio.run`` in a helper
      thread). Teardown therefore runs in a fresh event loop: a provider must not
      rely on the loop its ``setup`` ran in;
    * ``model_providers``: a session fixture returning ``{name: instance}`` for all
      providers, the same instances as the per-name fixtures. An entry point that
      names a fixture contributes that fixture's value under the entry point's name.

    Load problems are reported as pytest configuration warnings (shown in the
    warnings summary, subject to ``-W``/``filterwarnings``; should those make it an
    error, pytest stops with a usage error naming the provider). Call it from
    ``pytest_configure``; a second call does nothing.
    """
    if config.pluginmanager.has_plugin(PLUGIN_NAME):
        return

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        providers = load_model_providers()
    for message in caught:
        warning = message.message
        if not isinstance(warning, Warning):
            warning = message.category(str(warning))
        _config_warning(config, warning)

    if ALL_PROVIDERS_FIXTURE in providers:
        del providers[ALL_PROVIDERS_FIXTURE]
        _config_warning(
            config,
            UserWarning(
                f"dotevals: model provider {ALL_PROVIDERS_FIXTURE!r} could not be loaded: "
                "the name is reserved for the fixture of all providers"
            ),
        )

    namespace = types.ModuleType(
        "dotevals_model_providers", "Fixtures of the installed dotevals model providers."
    )
    # pytest finds fixtures by the marker's name, so the attribute names need not be
    # identifiers of the entry points (which may contain dashes or dots).
    fixtures: dict[str, str] = {}
    for index, (name, provider) in enumerate(providers.items()):
        if isinstance(provider, str):  # a fixture a plugin defines
            fixtures[name] = provider
        else:
            setattr(namespace, f"provider_fixture_{index}", _provider_fixture(name, provider))
            fixtures[name] = name
    namespace.all_providers_fixture = _all_providers_fixture(fixtures)  # type: ignore[attr-defined]
    config.pluginmanager.register(namespace, PLUGIN_NAME)
