"""Which errors of a model call are worth another try, and how long to wait first.

The rules read an exception's class names, the modules they come from and its
HTTP status, never importing the libraries that raised it (openai, anthropic,
httpx, requests, aiohttp, urllib3): dotevals retries their errors without
depending on any of them. The default retry policy of every evaluation
(:mod:`dotevals._declare.retry_policy`) and the OpenAI-compatible provider
(:mod:`dotevals.llm.openai`) both use them.

An error is retried when (first rule that applies):

1. it says it was retried already (:data:`RETRIED_MARK`, set by the provider once
   its own tries are spent): **not retried**;
2. it carries an HTTP status (``status_code``, ``status``, or the same on its
   ``response``) and comes from one of those libraries (or from an SDK with the same
   ``APIStatusError`` classes): **retried** for 408, 409, 429 and 500-599, **never**
   for any other status (400, 401, 403, 404, 422 ...);
3. it is a connection error or a timeout: the builtin ``ConnectionError`` and
   ``TimeoutError`` (``asyncio.TimeoutError``, ``socket.timeout``, aiohttp's
   ``ServerTimeoutError``), or one of :data:`CONNECTION_ERRORS` by module and class:
   **retried**;
4. anything else: **not retried**.

The wait before the next try is what the error's ``retry-after-ms`` or
``Retry-After`` header says (seconds or an HTTP date), at most
:data:`MAX_RETRY_AFTER` seconds; without one, exponential backoff with jitter.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "CONNECTION_ERRORS",
    "HTTP_LIBRARIES",
    "MAX_RETRY_AFTER",
    "RETRIED_MARK",
    "RETRIED_STATUSES",
    "backoff",
    "is_retryable",
    "mark_retried",
    "retry_after",
    "status_code",
    "wait_seconds",
]

#: The top-level modules whose errors' HTTP status is read.
HTTP_LIBRARIES = frozenset(
    {"openai", "anthropic", "httpx", "httpx2", "requests", "aiohttp", "urllib3"}
)
#: Class names of the SDKs generated like openai's and anthropic's (groq, together,
#: mistral's OpenAI-compatible clients ...): their status is read whatever their module.
SDK_ERROR_CLASSES = frozenset(
    {"APIStatusError", "APIConnectionError", "APITimeoutError", "APIError"}
)
#: HTTP statuses that are retried: request timeout, conflict, too many requests and
#: every server error (500-599).
RETRIED_STATUSES = frozenset({408, 409, 429})
#: Connection errors and timeouts of the HTTP libraries, by top-level module and class
#: name (a subclass of one counts too); the builtin ConnectionError and TimeoutError
#: count whatever raised them.
CONNECTION_ERRORS: Mapping[str, frozenset[str]] = {
    "openai": frozenset({"APIConnectionError", "APITimeoutError"}),
    "anthropic": frozenset({"APIConnectionError", "APITimeoutError"}),
    "httpx": frozenset({"TimeoutException", "NetworkError", "RemoteProtocolError"}),
    "httpx2": frozenset({"TimeoutException", "NetworkError", "RemoteProtocolError"}),
    "requests": frozenset({"ConnectionError", "Timeout", "ChunkedEncodingError"}),
    "aiohttp": frozenset({"ClientConnectionError", "ClientPayloadError"}),
    "urllib3": frozenset(
        {"TimeoutError", "NewConnectionError", "ProtocolError", "ProxyError", "ReadTimeoutError"}
    ),
    # Python 3.10, where these are not yet the builtin TimeoutError
    "asyncio": frozenset({"TimeoutError"}),
    "concurrent": frozenset({"TimeoutError"}),
}
#: The longest wait a ``Retry-After`` header gets, in seconds.
MAX_RETRY_AFTER = 60.0
#: Backoff without ``Retry-After``: about 1 s, 2 s, 4 s ... with jitter, at most this.
MAX_BACKOFF = 30.0
#: The attribute the provider sets on an error it has retried as often as it may.
RETRIED_MARK = "__dotevals_retried__"


def _classes(exc: BaseException) -> list[tuple[str, str]]:
    """(top-level module, class name) of each class of ``exc``, most derived first."""
    return [
        ((cls.__module__ or "").partition(".")[0], cls.__name__) for cls in type(exc).__mro__[:-2]
    ]


def _from_http_library(exc: BaseException) -> bool:
    return any(
        module in HTTP_LIBRARIES or name in SDK_ERROR_CLASSES for module, name in _classes(exc)
    )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def status_code(exc: BaseException) -> int | None:
    """The HTTP status ``exc`` carries: its ``status_code`` or ``status`` (aiohttp),
    else its ``response``'s; None when it has none (or is from no HTTP library)."""
    if not _from_http_library(exc):
        return None
    for holder in (exc, getattr(exc, "response", None)):
        if holder is None:
            continue
        for name in ("status_code", "status"):
            code = _int(getattr(holder, name, None))
            if code is not None and 100 <= code <= 599:
                return code
    return None


def is_retryable(exc: BaseException) -> bool:
    """True when ``exc`` is worth another try (the rules of the module docstring)."""
    if getattr(exc, RETRIED_MARK, False):
        return False
    code = status_code(exc)
    if code is not None:
        return code in RETRIED_STATUSES or 500 <= code <= 599
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    return any(name in CONNECTION_ERRORS.get(module, ()) for module, name in _classes(exc))


def mark_retried(exc: BaseException) -> BaseException:
    """Mark ``exc`` as retried already, so that a row's retry policy leaves it alone."""
    with contextlib.suppress(AttributeError, TypeError):  # a type without a __dict__
        setattr(exc, RETRIED_MARK, True)
    return exc


def _headers(exc: BaseException) -> Any:
    response = getattr(exc, "response", None)
    for holder in (response, exc):
        headers = getattr(holder, "headers", None)
        if headers is not None and hasattr(headers, "get"):
            return headers
    return None


def _header(headers: Any, name: str) -> str | None:
    try:
        value = headers.get(name)
        if value is None:  # a plain dict: its keys may be capitalised
            value = headers.get(name.title())
    except Exception:  # an odd headers object
        return None
    return None if value is None else str(value)


def retry_after(exc: BaseException, now: Callable[[], float] = time.time) -> float | None:
    """Seconds the error's ``retry-after-ms`` or ``Retry-After`` header asks to wait
    (``Retry-After`` may be an HTTP date), at most :data:`MAX_RETRY_AFTER`; None without
    one."""
    headers = _headers(exc)
    if headers is None:
        return None
    seconds: float | None = None
    milliseconds = _header(headers, "retry-after-ms")
    if milliseconds is not None:
        seconds = _number(milliseconds, 1000)
    text = _header(headers, "retry-after")
    if seconds is None and text is not None:
        seconds = _number(text, 1)
        if seconds is None:
            seconds = _date(text, now)
    if seconds is None:
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _number(text: str, divisor: float) -> float | None:
    try:
        value = float(text.strip()) / divisor
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _date(text: str, now: Callable[[], float]) -> float | None:
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return when.timestamp() - now()


def backoff(attempt: int, maximum: float = MAX_BACKOFF) -> float:
    """Exponential backoff with jitter before try ``attempt + 1`` (``attempt`` >= 1):
    about 1 s, 2 s, 4 s ... plus up to 1 s of jitter, at most ``maximum``."""
    return min(maximum, 2.0 ** (attempt - 1) + random.uniform(0, 1))


def wait_seconds(exc: BaseException | None, attempt: int) -> float:
    """How long to wait after try ``attempt`` failed with ``exc``: its Retry-After, else
    :func:`backoff`."""
    asked = retry_after(exc) if exc is not None else None
    return asked if asked is not None else backoff(attempt)
