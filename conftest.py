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
"""

from __future__ import annotations

import os

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
