"""The parsers of the model options (``--model``, ``--cache`` ...): light, so that the
option table can check them in every run without importing the provider."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from dotevals.errors import ConfigurationError

__all__ = [
    "CACHE_MODES",
    "PROVIDERS",
    "parse_cache_mode",
    "parse_count",
    "parse_expiry",
    "parse_model",
    "parse_number",
    "parse_rate",
]

#: The providers ``--model PROVIDER/NAME`` knows.
PROVIDERS = ("openai",)
CACHE_MODES = ("on", "off", "read-only", "refresh")
#: The environment variable that tells a worker process how many workers of the local
#: pool share the model limits (see :mod:`dotevals.llm.limits`).
WORKERS_VARIABLE = "DOTEVALS_WORKER_COUNT"
#: The cache file's name, in the ``.dotevals`` folder beside the results.
CACHE_FILE = "cache.db"
#: OpenAI's own address, when neither a base URL nor ``OPENAI_BASE_URL`` is given.
OPENAI_BASE_URL = "https://api.openai.com/v1"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_model(value: str | None) -> str | None:
    """``PROVIDER/NAME`` (``openai/gpt-4o-mini``; the name may hold slashes), or None."""
    if value is None or value == "":
        return None
    provider, slash, name = str(value).strip().partition("/")
    if not slash or not name or provider not in PROVIDERS:
        raise ConfigurationError(
            f"model must be PROVIDER/MODEL such as openai/gpt-4o-mini (providers: "
            f"{', '.join(PROVIDERS)}), got {value!r}"
        )
    return f"{provider}/{name}"


def parse_cache_mode(value: str | None) -> str:
    """``on`` (the default), ``off``, ``read-only`` or ``refresh``."""
    mode = "on" if value in (None, "") else str(value).strip().lower()
    if mode not in CACHE_MODES:
        raise ConfigurationError(f"cache must be one of {', '.join(CACHE_MODES)}, got {value!r}")
    return mode


def parse_expiry(value: str | float | None) -> float | None:
    """Seconds an entry stays fresh: a number of seconds or ``30m``, ``12h``, ``7d``,
    ``2w``; None (or ``never``) for entries that never expire."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "never", "none")):
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = str(value).strip().lower()
        unit = _UNITS.get(text[-1:])
        try:
            seconds = float(text[:-1] if unit else text) * (unit or 1)
        except ValueError:
            seconds = -1.0
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ConfigurationError(
            f"cache expiry must be a duration such as 3600, 30m, 12h or 7d, got {value!r}"
        )
    return seconds


def parse_number(what: str, value: Any, low: float | None = None) -> float | None:
    """A finite number (at least ``low``), or None."""
    if value is None or value == "":
        return None
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or (low is not None and number < low):
        bound = f" >= {low:g}" if low is not None else ""
        raise ConfigurationError(f"{what} must be a number{bound}, got {value!r}")
    return number


def parse_rate(what: str, value: Any) -> float | None:
    """A rate per minute > 0, or None (no limit)."""
    number = parse_number(what, value, 0)
    if number is not None and number <= 0:
        raise ConfigurationError(f"{what} must be a number > 0, got {value!r}")
    return number


def parse_count(what: str, value: Any, low: int = 0) -> int | None:
    """A whole number >= ``low``, or None."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if isinstance(value, bool) or not (isinstance(value, int) or text.lstrip("-").isdigit()):
        raise ConfigurationError(f"{what} must be a whole number >= {low}, got {value!r}")
    number = int(text)
    if number < low:
        raise ConfigurationError(f"{what} must be a whole number >= {low}, got {value!r}")
    return number


def parse_temperature(value: Any) -> float | None:
    return parse_number("model temperature", value, 0)


def parse_max_tokens(value: Any) -> int | None:
    return parse_count("model max tokens", value, 1)


def parse_seed(value: Any) -> int | None:
    if value is None or value == "":
        return None
    text = str(value).strip()
    if isinstance(value, bool) or not text.lstrip("-").isdigit():
        raise ConfigurationError(f"model seed must be a whole number, got {value!r}")
    return int(text)


def parse_rpm(value: Any) -> float | None:
    return parse_rate("model requests per minute", value)


def parse_tpm(value: Any) -> float | None:
    return parse_rate("model tokens per minute", value)


def parse_concurrency(value: Any) -> int | None:
    return parse_count("model concurrency", value, 1)


def parse_retries(value: Any) -> int | None:
    return parse_count("model retries", value, 0)


def parse_text(value: Any) -> str | None:
    """Text, or None when empty."""
    return None if value is None or str(value).strip() == "" else str(value).strip()


def default_cache_path(storage: Any = None) -> Path:
    """``.dotevals/cache.db`` beside the results: in the folder that holds the json
    store's folder or the sqlite store's file (for the default ``json://.dotevals``,
    that is ``.dotevals/cache.db`` itself); in the working directory for any other
    storage."""
    location = getattr(storage, "root", None) or getattr(storage, "path", None)
    if location is not None and str(location) != ":memory:":
        base = Path(location).expanduser().absolute().parent
    else:
        base = Path.cwd()
    return base / ".dotevals" / CACHE_FILE


def resolve_base_url(base_url: str | None) -> str:
    """The server's address: ``base_url``, else ``OPENAI_BASE_URL``, else OpenAI's."""
    return (base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_BASE_URL).rstrip("/")
