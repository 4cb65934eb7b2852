"""Hypothesis profiles: ``ci`` (default, 500 examples) and ``thorough`` (many more).

Choose one with ``HYPOTHESIS_PROFILE=thorough pytest property_tests``. pytest-trio registers trio's
scheduler RNG with hypothesis, so every example's task interleaving is derived from its seed and a failing
example replays exactly.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile(
    "thorough",
    max_examples=20_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
