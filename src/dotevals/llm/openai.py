"""An OpenAI-compatible provider: chat completions through the official ``openai``
SDK, with the response cache, the rate limits per model and the retries of
:mod:`dotevals.llm`.

::

    from dotevals.llm import OpenAIModel

    llm = OpenAIModel("gpt-4o-mini", temperature=0, max_tokens=256, seed=1)
    llm("Capital of France?")              # sync code: the text
    await llm("Capital of France?")        # async code: the text
    llm([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])

Any server that speaks the chat-completions API works: give its ``base_url``
(vLLM: ``http://localhost:8000/v1``, Ollama: ``http://localhost:11434/v1``). Without
one, the SDK's ``OPENAI_BASE_URL`` and then OpenAI's own address are used; without an
``api_key``, the SDK's ``OPENAI_API_KEY`` (a server other than OpenAI's gets a
placeholder key when neither is set, as local servers need none).

A call goes: the cache (a hit answers at once), then the model's limiter (pause,
concurrency slot, request and token rates), then the request, retried on the errors
:func:`dotevals.llm.retries.is_retryable` accepts (a 429 also lowers the model's
concurrency and pauses it for its ``Retry-After``), then the cache stores the answer.
Every call runs on the process's model-call loop (:mod:`dotevals.llm._loop`); the
SDK's own retries are off, so that each try goes through the limiter.

The ``openai`` package is imported on the first call: ``pip install "dotevals[openai]"``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotevals.errors import ConfigurationError
from dotevals.llm._loop import call_async, call_sync
from dotevals.llm.cache import ResponseCache, cache_key
from dotevals.llm.limits import DEFAULT_CONCURRENCY, Limits, ModelLimiter, limiter_for
from dotevals.llm.retries import is_retryable, mark_retried, retry_after, status_code, wait_seconds
from dotevals.llm.row import Row, current_row
from dotevals.llm.settings import (
    OPENAI_BASE_URL,
    PROVIDERS,
    default_cache_path,
    parse_model,
    resolve_base_url,
)
from dotevals.llm.usage import read_usage
from dotevals.providers import ModelHandle, ModelProvider

__all__ = [
    "DEFAULT_RETRIES",
    "PROVIDERS",
    "Completion",
    "GenerateSettings",
    "OpenAIModel",
    "OpenAIProvider",
    "parse_model_spec",
]

#: Retries of one call after its first try (6 tries in all).
DEFAULT_RETRIES = 5
#: The key given to a server other than OpenAI's when no key is set at all.
PLACEHOLDER_KEY = "EMPTY"

#: A prompt, or a list of chat messages.
Prompt = str | list[dict[str, Any]]


def parse_model_spec(spec: str) -> tuple[str, str]:
    """``"openai/gpt-4o-mini"`` -> ``("openai", "gpt-4o-mini")``; the name may hold slashes
    (``openai/meta-llama/Llama-3.1-8B-Instruct``)."""
    provider, _, name = str(parse_model(spec)).partition("/")
    return provider, name


@dataclass(frozen=True)
class GenerateSettings:
    """The model and its generate settings, as the evaluation's metadata records them."""

    model: str
    base_url: str
    temperature: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    #: Any other chat-completions parameter (``top_p``, ``stop``, ``response_format`` ...).
    extra: dict[str, Any] = field(default_factory=dict)
    provider: str = "openai"

    def params(self) -> dict[str, Any]:
        """The settings as request parameters (those set only)."""
        given = {"temperature": self.temperature, "max_tokens": self.max_tokens, "seed": self.seed}
        return {**{k: v for k, v in given.items() if v is not None}, **self.extra}

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "provider": self.provider,
            "model": self.model,
            "base_url": self.base_url,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
        }
        if self.extra:
            data["extra"] = dict(self.extra)
        return data


@dataclass
class Completion:
    """One answer: its text, the response as JSON data, its usage block, and whether
    it came from the cache."""

    text: str
    response: dict[str, Any]
    usage: dict[str, Any] | None
    cached: bool


def _text(response: dict[str, Any]) -> str:
    """The first choice's message content ("" when it has none, e.g. tool calls)."""
    try:
        content = response["choices"][0]["message"].get("content")
    except (KeyError, IndexError, TypeError, AttributeError):
        return ""
    return content if isinstance(content, str) else ""


def _estimate_tokens(body: dict[str, Any]) -> int:
    """Tokens a request may use, before it is sent: a quarter of its text plus its
    ``max_tokens``."""
    characters = 0
    for message in body.get("messages", ()):
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            characters += len(content)
        elif isinstance(content, list):
            characters += sum(
                len(str(part.get("text", ""))) for part in content if isinstance(part, dict)
            )
    most = body.get("max_tokens") or body.get("max_completion_tokens") or 0
    return characters // 4 + 1 + (most if isinstance(most, int) else 0)


def _messages(prompt: Prompt) -> list[dict[str, Any]]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    if isinstance(prompt, (list, tuple)) and all(isinstance(m, dict) for m in prompt):
        return list(prompt)
    raise TypeError(
        "a model takes a prompt (str) or a list of chat messages (dicts), "
        f"got {type(prompt).__name__}"
    )


class OpenAIModel:
    """A model behind an OpenAI-compatible chat-completions API (see the module docstring).

    ``llm(prompt)`` gives the text: in a sync row (or code with no event loop running)
    it returns it, in an async row (or code on a running loop) it returns an awaitable
    of it. :meth:`generate` and :meth:`agenerate` are the same, explicitly;
    :meth:`complete` and :meth:`acomplete` give the whole :class:`Completion`.
    Per-call keyword arguments are added to the request (``tools``, ``temperature``...).

    Args:
        model: the model's name on the server (``gpt-4o-mini``).
        base_url, api_key: the server and its key (see the module docstring).
        temperature, max_tokens, seed: generate settings; ``extra`` holds any other.
        cache: ``on``, ``off``, ``read-only`` or ``refresh`` (see :mod:`dotevals.llm.cache`).
        cache_path: the cache file (default ``.dotevals/cache.db`` in the working
            directory; under pytest, beside the results).
        cache_expiry: seconds (or ``7d``, ``12h``...) an entry stays fresh; None: always.
        rpm, tpm, concurrency: this model's limits (see :mod:`dotevals.llm.limits`).
        retries: retries of one call after its first try.
        timeout: seconds one request may take (the SDK's default when None).
        client_options: more keyword arguments of ``openai.AsyncOpenAI``.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
        extra: dict[str, Any] | None = None,
        cache: str = "on",
        cache_path: str | os.PathLike[str] | None = None,
        cache_expiry: float | str | None = None,
        rpm: float | None = None,
        tpm: float | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        retries: int = DEFAULT_RETRIES,
        timeout: float | None = None,
        client_options: dict[str, Any] | None = None,
    ):
        if not isinstance(model, str) or not model:
            raise ConfigurationError(f"model must be a model's name, got {model!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ConfigurationError(f"retries must be a whole number >= 0, got {retries!r}")
        self._config = {
            "model": model,
            "base_url": base_url,
            "api_key": api_key,
            "temperature": temperature,
            "max_tokens": max_tokens,
            "seed": seed,
            "extra": dict(extra or {}),
            "cache": cache,
            "cache_path": None if cache_path is None else str(cache_path),
            "cache_expiry": cache_expiry,
            "rpm": rpm,
            "tpm": tpm,
            "concurrency": concurrency,
            "retries": retries,
            "timeout": timeout,
            "client_options": dict(client_options or {}),
        }
        #: The model and its generate settings.
        self.settings = GenerateSettings(
            model, resolve_base_url(base_url), temperature, max_tokens, seed, dict(extra or {})
        )
        self.limits = Limits(rpm, tpm, concurrency)
        self.retries = retries
        path = Path(cache_path) if cache_path is not None else default_cache_path()
        #: The response cache.
        self.cache = ResponseCache(path, cache, cache_expiry)
        self._api_key = api_key
        self._timeout = timeout
        self._client_options = dict(client_options or {})
        self._client: Any = None
        self._limiter: ModelLimiter | None = None
        self._pid = os.getpid()

    def __repr__(self) -> str:
        s = self.settings
        return f"OpenAIModel({s.model!r}, base_url={s.base_url!r}, cache={self.cache.mode!r})"

    # pickling: the configuration travels, the client and connections are made anew
    def __getstate__(self) -> dict[str, Any]:
        return dict(self._config)

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        self.__init__(state.pop("model"), **state)  # type: ignore[misc]

    def __dotevals_metadata__(self) -> dict[str, Any]:
        """What the evaluation's metadata records of this model."""
        return {**self.settings.to_dict(), "cache": self.cache.mode}

    @property
    def key(self) -> str:
        """The model key its limits and cache entries belong to: server and name."""
        return f"{self.settings.base_url}#{self.settings.model}"

    # calling -----------------------------------------------------------------
    def __call__(self, prompt: Prompt, **params: Any) -> Any:
        """The text (sync caller) or an awaitable of it (async caller)."""
        row = current_row()
        asynchronous = row.is_async if row is not None else _loop_running()
        return self.agenerate(prompt, **params) if asynchronous else self.generate(prompt, **params)

    def generate(self, prompt: Prompt, **params: Any) -> str:
        """The answer's text, waiting for it."""
        return self.complete(prompt, **params).text

    async def agenerate(self, prompt: Prompt, **params: Any) -> str:
        """The answer's text, awaited."""
        return (await self.acomplete(prompt, **params)).text

    def complete(self, prompt: Prompt, **params: Any) -> Completion:
        """The whole answer, waiting for it."""
        row = current_row()
        return call_sync(self._complete(self._body(prompt, params), row))

    async def acomplete(self, prompt: Prompt, **params: Any) -> Completion:
        """The whole answer, awaited."""
        row = current_row()
        return await call_async(self._complete(self._body(prompt, params), row))

    def _body(self, prompt: Prompt, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "model": self.settings.model,
            "messages": _messages(prompt),
            **self.settings.params(),
            **params,
        }

    # on the model-call loop ----------------------------------------------------
    async def _complete(self, body: dict[str, Any], row: Row | None) -> Completion:
        epoch = 0 if row is None else row.epoch
        key = cache_key(self.settings.base_url, body, epoch)
        cache = self.cache
        limiter = self._model_limiter()
        if cache.reads:
            hit = cache.get(key)
            if hit is not None:
                if row is not None:  # its tokens were spent once, when it was cached
                    row.report_calls().add(
                        self.settings.model, cached=True, usage=hit.usage, limit=limiter.limit
                    )
                return Completion(_text(hit.response), hit.response, hit.usage, cached=True)
        try:
            data, rate_limited = await self._send(body, limiter)
        except _Failed as failed:
            if row is not None:
                row.report_calls().add_rate_limited(failed.rate_limited)
            raise failed.error from None
        if not isinstance(data, dict) or "error" in data or not data.get("choices"):
            # an error in a 200 answer (some servers do that): the row's error, never cached
            raise ValueError(
                f"model {self.settings.model!r} answered without choices: {str(data)[:300]}"
            )
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else None
        if usage is not None and isinstance(usage.get("total_tokens"), int):
            limiter.charge(usage["total_tokens"] - _estimate_tokens(body))
        cache.put(
            key,
            model=self.settings.model,
            base_url=self.settings.base_url,
            epoch=epoch,
            response=data,
            usage=usage,
        )
        if row is not None:
            cached = None if cache.mode == "off" else False
            row.report_calls().add(
                self.settings.model,
                cached=cached,
                usage=usage,
                rate_limited=rate_limited,
                limit=limiter.limit,
            )
            if usage is not None:  # the tokens this call spent, which its cost is made of
                row.add_usage(self.settings.model, read_usage(data))
        return Completion(_text(data), data, usage, cached=False)

    async def _send(self, body: dict[str, Any], limiter: ModelLimiter) -> tuple[Any, int]:
        """The response's JSON data, tried up to ``retries + 1`` times, and the 429s met."""
        client = self._async_client()
        estimate = _estimate_tokens(body)
        attempt = rate_limited = 0
        while True:
            attempt += 1
            await limiter.acquire(estimate)
            try:
                raw = await client.chat.completions.with_raw_response.create(**body)
                data = raw.http_response.json()
            except Exception as exc:
                limiter.release(False)
                if status_code(exc) == 429:
                    rate_limited += 1
                    limiter.too_many_requests(retry_after(exc))
                if not is_retryable(exc):
                    raise _Failed(exc, rate_limited) from None
                if attempt > self.retries:
                    raise _Failed(mark_retried(exc), rate_limited) from None
                await asyncio.sleep(wait_seconds(exc, attempt))
                continue
            limiter.release(True)
            return data, rate_limited

    def _model_limiter(self) -> ModelLimiter:
        if self._limiter is None or self._pid != os.getpid():
            self._limiter = limiter_for(self.key, self.limits.per_process())
            self._pid = os.getpid()
        return self._limiter

    def _async_client(self) -> Any:
        if self._client is None or self._pid != os.getpid():
            try:
                import openai
            except ImportError:
                raise ConfigurationError(
                    "the OpenAI-compatible provider needs the openai SDK: "
                    'pip install "dotevals[openai]"'
                ) from None
            api_key = self._api_key or os.environ.get("OPENAI_API_KEY")
            if api_key is None and self.settings.base_url != OPENAI_BASE_URL:
                api_key = PLACEHOLDER_KEY
            options: dict[str, Any] = {"max_retries": 0, **self._client_options}
            if self._timeout is not None:
                options["timeout"] = self._timeout
            self._client = openai.AsyncOpenAI(
                base_url=self.settings.base_url, api_key=api_key, **options
            )
            self._pid = os.getpid()
        return self._client

    # closing -------------------------------------------------------------------
    async def aclose(self) -> None:
        """Close the HTTP client and the cache's connection (a later call reopens them)."""
        await call_async(self._close_here())

    def close(self) -> None:
        """:meth:`aclose`, waiting for it."""
        if self._client is None:  # nothing ran on the model-call loop
            self.cache.close()
            return
        call_sync(self._close_here())

    async def _close_here(self) -> None:
        client, self._client = self._client, None
        self.cache.close()
        if client is not None and self._pid == os.getpid():
            await client.close()


class _Failed(Exception):
    """A call's last error, with the 429s it met (raised as the error itself)."""

    def __init__(self, error: BaseException, rate_limited: int):
        self.error = error
        self.rate_limited = rate_limited


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class OpenAIProvider(ModelProvider):
    """:class:`OpenAIModel` as a :class:`~dotevals.providers.ModelProvider`: ``setup``
    takes ``"openai/NAME"`` (or a bare name) and the model's keyword arguments, and its
    handle's ``model`` is the :class:`OpenAIModel`. Keyword arguments given to the
    provider itself are defaults for every model it sets up. It can be declared under
    the ``dotevals.model_providers`` entry-point group::

        [project.entry-points."dotevals.model_providers"]
        openai_models = "dotevals.llm.openai:OpenAIProvider"
    """

    def __init__(self, **defaults: Any):
        self._defaults = defaults
        self._models: dict[str, OpenAIModel] = {}
        self._ids = itertools.count()

    async def setup(self, resource_spec: str, **config: Any) -> ModelHandle:
        name = parse_model_spec(resource_spec)[1] if "/" in resource_spec else resource_spec
        model = OpenAIModel(name, **{**self._defaults, **config})
        resource_id = f"{resource_spec}#{next(self._ids)}"
        self._models[resource_id] = model
        return ModelHandle(resource_id, model, self)

    async def teardown(self, resource_id: str) -> None:
        model = self._models.pop(resource_id, None)
        if model is not None:
            await model.aclose()
