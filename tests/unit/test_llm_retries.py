"""Which errors of a model call are retried, and how long dotevals waits first: the
SDKs' own errors (real openai and aiohttp exceptions; look-alikes of the libraries the
dev tools do not install, by module and class name), never importing them."""

from __future__ import annotations

import email.utils
import subprocess
import sys
import time

import aiohttp
import httpx2
import openai
import pytest

from dotevals._declare.retry_policy import RetryPolicy, as_retrying
from dotevals.llm.retries import (
    MAX_RETRY_AFTER,
    backoff,
    is_retryable,
    mark_retried,
    retry_after,
    status_code,
    wait_seconds,
)

REQUEST = httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions")


def openai_error(status: int, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    """The error the openai SDK raises for an answer of ``status``."""
    response = httpx2.Response(status, headers=headers or {}, request=REQUEST)
    client = openai.OpenAI(api_key="x", base_url="http://127.0.0.1/v1")
    return client._make_status_error_from_response(response)


def look_alike(module: str, name: str, base: type[BaseException] = Exception, **attrs):
    """An exception class named ``name`` in ``module`` (a library not installed here)."""
    cls = type(name, (base,), {"__module__": module})
    exc = cls("look-alike")
    for key, value in attrs.items():
        setattr(exc, key, value)
    return exc


class Response:
    def __init__(self, status_code: int, headers: dict[str, str] | None = None):
        self.status_code = status_code
        self.headers = headers or {}


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 529])
def test_openai_errors_worth_another_try_are_retried(status: int):
    exc = openai_error(status)
    assert status_code(exc) == status
    assert is_retryable(exc)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_openai_errors_of_the_request_itself_are_never_retried(status: int):
    assert not is_retryable(openai_error(status))


def test_openai_connection_errors_and_timeouts_are_retried():
    assert is_retryable(openai.APIConnectionError(request=REQUEST))
    assert is_retryable(openai.APITimeoutError(request=REQUEST))


def test_aiohttp_errors_by_status_and_by_class():
    info = aiohttp.RequestInfo(
        aiohttp.client_reqrep.URL("http://127.0.0.1/"),
        "POST",
        {},
        aiohttp.client_reqrep.URL("http://127.0.0.1/"),
    )
    limited = aiohttp.ClientResponseError(info, (), status=429, headers={"Retry-After": "2"})
    assert is_retryable(limited) and retry_after(limited) == 2
    assert not is_retryable(aiohttp.ClientResponseError(info, (), status=404))
    assert is_retryable(aiohttp.ServerDisconnectedError())
    assert is_retryable(aiohttp.ServerTimeoutError())


@pytest.mark.parametrize(
    ("exc", "retried"),
    [
        (look_alike("anthropic._exceptions", "RateLimitError", status_code=429), True),
        (look_alike("anthropic._exceptions", "OverloadedError", status_code=529), True),
        (look_alike("anthropic._exceptions", "BadRequestError", status_code=400), False),
        (look_alike("anthropic._exceptions", "APIConnectionError"), True),
        (look_alike("anthropic._exceptions", "APITimeoutError"), True),
        (look_alike("httpx", "HTTPStatusError", response=Response(503)), True),
        (look_alike("httpx", "HTTPStatusError", response=Response(401)), False),
        (look_alike("requests.exceptions", "HTTPError", response=Response(429)), True),
        (look_alike("requests.exceptions", "HTTPError", response=Response(403)), False),
        (look_alike("requests.exceptions", "ConnectionError", OSError), True),
        (look_alike("requests.exceptions", "Timeout", OSError), True),
        (look_alike("urllib3.exceptions", "NewConnectionError"), True),
        (look_alike("groq._exceptions", "APIStatusError", status_code=500), True),
        (look_alike("mylib", "Oops", status_code=500), False),  # no HTTP library: no status
        (ValueError("bad"), False),
        (KeyError("x"), False),
        (ConnectionResetError(), True),
        (TimeoutError(), True),
    ],
)
def test_what_is_retried(exc: BaseException, retried: bool):
    assert is_retryable(exc) is retried


def test_a_subclass_of_a_named_connection_error_is_retried():
    network = type("NetworkError", (Exception,), {"__module__": "httpx"})
    connect = type("ConnectError", (network,), {"__module__": "httpx"})
    timeout = type("TimeoutException", (Exception,), {"__module__": "httpx"})
    read = type("ReadTimeout", (timeout,), {"__module__": "httpx"})
    assert is_retryable(connect("refused"))
    assert is_retryable(read("slow"))


def test_an_error_the_provider_has_retried_already_is_not_retried_again():
    exc = openai_error(429)
    assert mark_retried(exc) is exc
    assert not is_retryable(exc)


def test_retry_after_seconds_milliseconds_and_dates():
    assert retry_after(openai_error(429, {"retry-after": "1"})) == 1
    assert retry_after(openai_error(429, {"retry-after-ms": "250", "retry-after": "9"})) == 0.25
    assert retry_after(openai_error(429, {"Retry-After": "0.5"})) == 0.5
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < retry_after(openai_error(429, {"retry-after": when})) <= 30
    assert retry_after(openai_error(429, {"retry-after": "3600"})) == MAX_RETRY_AFTER
    assert retry_after(openai_error(429, {"retry-after": "soon"})) is None
    assert retry_after(openai_error(429)) is None
    assert retry_after(ValueError()) is None
    assert (
        retry_after(
            look_alike("httpx", "HTTPStatusError", response=Response(429, {"Retry-After": "4"}))
        )
        == 4
    )


def test_without_retry_after_the_wait_backs_off_with_jitter():
    for attempt, low in ((1, 1), (2, 2), (3, 4), (4, 8)):
        assert low <= backoff(attempt) <= low + 1
    assert backoff(20) == 30
    assert wait_seconds(openai_error(429, {"retry-after": "2"}), 1) == 2
    assert 1 <= wait_seconds(openai_error(500), 1) <= 2


def call_with_policy(errors: list[BaseException]) -> tuple[list[float], int, object]:
    """Call a function that raises ``errors`` one by one, under the default policy of 2
    retries; the waits asked for, the calls made and the result (or error)."""
    waits: list[float] = []
    calls = 0

    def flaky() -> str:
        nonlocal calls
        calls += 1
        if errors:
            raise errors.pop(0)
        return "done"

    retrying = as_retrying(RetryPolicy(2, sleep=waits.append))
    try:
        result: object = retrying(flaky)
    except Exception as exc:
        result = exc
    return waits, calls, result


def test_the_default_row_policy_retries_an_sdk_429_after_its_retry_after():
    waits, calls, result = call_with_policy([openai_error(429, {"retry-after": "1.5"})])
    assert (waits, calls, result) == ([1.5], 2, "done")


def test_the_default_row_policy_never_retries_a_400():
    error = openai_error(400)
    waits, calls, result = call_with_policy([error])
    assert (waits, calls, result) == ([], 1, error)


def test_the_default_row_policy_still_retries_builtin_connection_errors():
    waits, calls, result = call_with_policy([ConnectionError(), TimeoutError()])
    assert calls == 3 and result == "done" and len(waits) == 2


def test_recognising_sdk_errors_imports_none_of_the_sdks():
    code = (
        "import sys\n"
        "from dotevals.llm.retries import is_retryable\n"
        "is_retryable(ValueError()); is_retryable(ConnectionError())\n"
        "print(sorted(m for m in ('openai', 'anthropic', 'httpx', 'httpx2', 'requests', "
        "'aiohttp', 'urllib3') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
