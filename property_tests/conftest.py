"""Hypothesis profiles: ``ci`` (default, 500 examples), ``thorough`` (many more) and ``mutate``.

Choose one with ``HYPOTHESIS_PROFILE=thorough pytest --timeout=0 property_tests`` (the per-test timeout
in pyproject.toml is sized for ``ci``). ``mutate`` is ``ci`` without shrinking or the example database:
``scripts/mutate.py`` uses it to time how fast a planted fault is found (and ``mutate-generated``,
without the explicit examples, with ``--generated-only``). The engine's property tests
draw their task interleavings with :func:`engine.testing.schedules`, so a failing example prints the
seed that replays it; the others rely on pytest-trio registering trio's scheduler RNG with hypothesis.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings
from pg_support import pg_server as pg_server
from pg_support import pg_url as pg_url

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
settings.register_profile(
    "mutate",
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    database=None,
)
settings.register_profile(
    "mutate-generated",  # as mutate, without the explicit examples: does random search alone find it?
    parent=settings.get_profile("mutate"),
    phases=[Phase.generate],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
