"""Tests of dotevals.providers in this process: model handles and their teardown."""

from __future__ import annotations

import asyncio

import pytest

from dotevals.providers import (
    ModelHandle,
    ModelProvider,
)


class RecordingProvider(ModelProvider):
    def __init__(self) -> None:
        self.torn_down: list[str] = []

    async def setup(self, resource_spec: str, **config: object) -> ModelHandle:
        return ModelHandle(resource_spec, object(), self)

    async def teardown(self, resource_id: str) -> None:
        self.torn_down.append(resource_id)


def test_handle_teardown_is_idempotent() -> None:
    provider = RecordingProvider()

    async def run() -> ModelHandle:
        handle = await provider.setup("m")
        assert handle.is_active
        await handle.teardown()
        await handle.teardown()
        return handle

    handle = asyncio.run(run())
    assert not handle.is_active
    assert provider.torn_down == ["m"]


def test_handle_is_an_async_context_manager() -> None:
    provider = RecordingProvider()

    async def run() -> ModelHandle:
        async with await provider.setup("m") as handle:
            assert handle.is_active
        return handle

    handle = asyncio.run(run())
    assert not handle.is_active
    assert provider.torn_down == ["m"]


def test_model_provider_is_abstract() -> None:
    with pytest.raises(TypeError):
        ModelProvider()  # type: ignore[abstract]

    class OnlySetup(ModelProvider):
        async def setup(self, resource_spec: str, **config: object) -> ModelHandle:
            raise NotImplementedError

    class OnlyTeardown(ModelProvider):
        async def teardown(self, resource_id: str) -> None:
            pass

    for cls in (OnlySetup, OnlyTeardown):
        with pytest.raises(TypeError, match="abstract"):
            cls()  # type: ignore[abstract]

    assert isinstance(RecordingProvider(), ModelProvider)


def test_session_teardown_continues_after_an_error() -> None:
    from dotevals.providers import _teardown_all

    class FailingProvider(RecordingProvider):
        async def teardown(self, resource_id: str) -> None:
            await super().teardown(resource_id)
            if resource_id == "bad":
                raise RuntimeError("cannot stop bad")

    provider = FailingProvider()

    async def run() -> list[ModelHandle]:
        return [await provider.setup(spec) for spec in ("a", "bad", "c")]

    handles = asyncio.run(run())
    with pytest.raises(RuntimeError, match="cannot stop bad"):
        asyncio.run(_teardown_all(list(handles)))
    assert provider.torn_down == ["c", "bad", "a"]
    assert not any(h.is_active for h in handles)
