"""The ``llm`` fixture's options and the model it builds from them.

The pytest plugin registers the ``llm`` fixture in every session without importing
this module; it is imported once an evaluation is collected (the options are taken
then) or a test asks for the fixture.
"""

from __future__ import annotations

from typing import Any

from dotevals.errors import ConfigurationError
from dotevals.llm.settings import default_cache_path, resolve_base_url

__all__ = ["FixtureOptions"]


class FixtureOptions:
    """The ``llm`` fixture's options, taken from the session's run options once an
    evaluation is collected (or when the fixture is first used), and carried to worker
    processes with the fixture, which builds its model there from them."""

    def __init__(self) -> None:
        self.values: dict[str, Any] | None = None

    def fill(self, options: Any) -> None:
        """Take the options of :class:`dotevals.options.RunOptions` ``options``."""
        self.values = {
            "model": options.model,
            "base_url": options.model_base_url,
            "temperature": options.model_temperature,
            "max_tokens": options.model_max_tokens,
            "seed": options.model_seed,
            "rpm": options.model_rpm,
            "tpm": options.model_tpm,
            "concurrency": options.model_concurrency,
            "retries": options.model_retries,
            "cache": options.cache,
            "cache_path": options.cache_path or str(default_cache_path(options.storage)),
            "cache_expiry": options.cache_expiry,
        }

    def metadata(self) -> dict[str, Any] | None:
        """What the evaluation's metadata records of the model (None without --model)."""
        values = self.values
        if values is None or values["model"] is None:
            return None
        provider, _, name = values["model"].partition("/")
        return {
            "provider": provider,
            "model": name,
            "base_url": resolve_base_url(values["base_url"]),
            "temperature": values["temperature"],
            "max_tokens": values["max_tokens"],
            "seed": values["seed"],
            "cache": values["cache"],
        }

    def model(self) -> Any:
        """The fixture's model: an :class:`~dotevals.llm.openai.OpenAIModel`."""
        values = self.values
        assert values is not None
        if values["model"] is None:
            raise ConfigurationError(
                "the llm fixture needs a model: give --model PROVIDER/NAME (such as "
                "openai/gpt-4o-mini) or dotevals_model in the ini file"
            )
        from dotevals.llm.openai import OpenAIModel

        _, _, name = values["model"].partition("/")
        given = {
            k: values[k] for k in ("rpm", "tpm", "concurrency", "retries") if values[k] is not None
        }
        return OpenAIModel(
            name,
            base_url=values["base_url"],
            temperature=values["temperature"],
            max_tokens=values["max_tokens"],
            seed=values["seed"],
            cache=values["cache"],
            cache_path=values["cache_path"],
            cache_expiry=values["cache_expiry"],
            **given,
        )
