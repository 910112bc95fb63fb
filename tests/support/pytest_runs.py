"""Running pytest sessions from the tests: the plugins they leave out, and one runner."""

from __future__ import annotations

import pytest

#: Plugins that only slow every pytest session a test starts down (anyio's comes with
#: the openai SDK and with httpx, which genai-prices brings, and imports asyncio into every
#: session).
FAST = ("-p", "no:hypothesispytest", "-p", "no:cacheprovider", "-p", "no:xdist", "-p", "no:anyio")


def run_pytest(
    pytester: pytest.Pytester, *args: str, timeout: float = 120, progress: bool = False
) -> pytest.RunResult:
    """pytest in a subprocess (worker pools are its children; signals and hangs stay in it)
    with only the plugins it needs, and ``--no-progress`` unless ``progress``;
    ``timeout`` guards against hangs."""
    no_progress = () if progress else ("--no-progress",)
    return pytester.runpytest_subprocess(*FAST, *no_progress, *args, timeout=timeout)
