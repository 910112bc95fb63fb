"""Settings for the whole test suite.

Hypothesis profiles: ``ci`` (the default) runs a few derandomized examples per
property, so that a run is fast and gives the same verdict every time;
``full`` (``make test-full``, or ``pytest --hypothesis-profile=full``) runs
many random examples to look for new failures.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
settings.register_profile("ci", max_examples=10, derandomize=True, **_COMMON)
settings.register_profile("full", max_examples=200, **_COMMON)
settings.load_profile("ci")
