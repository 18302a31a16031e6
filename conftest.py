"""Hypothesis settings profiles for gradcheck's own test suites, chosen by HYPOTHESIS_PROFILE.

* ``dev`` (default): quick feedback, randomised, the local example database shrinks and
  replays failures between runs.
* ``ci``: what `.ci/run` uses.  ``derandomize=True`` makes every run draw the same examples
  (the seed is derived from each test's name), so CI is reproducible and a red run is red for
  the same example on any machine; no example database (CI keeps none); no deadline (shared
  CI machines have noisy timings, and speed is measured by the benchmarks, not by tests).
* ``thorough``: thousands of examples per property, randomised, for a long soak.

Hypothesis loads its own built-in ``ci`` profile when the CI environment variable is set; the
profile is chosen here explicitly so that our ``ci`` profile, not the built-in one, applies
(`.ci/run` sets HYPOTHESIS_PROFILE=ci).

**One knob.**  Tests that fuzz a layer with ``fuzz_layer`` draw ``budget(factor)``
configurations: the active profile's ``max_examples`` times a factor the test states (a soak,
``@pytest.mark.slow``, asks for many; a quick detection test for a few).  Changing the
profile scales every suite together.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    "print_blob": True,
}

settings.register_profile("dev", max_examples=40, **_COMMON)
settings.register_profile("ci", max_examples=150, derandomize=True, database=None, **_COMMON)
settings.register_profile("thorough", max_examples=3000, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def budget(factor: float) -> int:
    """``factor`` × the active profile's ``max_examples`` configurations (at least 1)."""
    return max(1, math.ceil(factor * settings().max_examples))


@pytest.fixture(name="budget")
def budget_fixture() -> Callable[[float], int]:
    """:func:`budget` for tests: ``budget(0.4)`` is 60 configurations under the ci profile."""
    return budget
