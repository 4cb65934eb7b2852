"""Harness fixtures of the contract tests: each is parametrized over every implementation of a port."""

from __future__ import annotations

import pytest
from contracts.backends import MemorySessions, PostgresSessions, SessionsBackend


@pytest.fixture(params=["memory", "postgres"])
def sessions(request: pytest.FixtureRequest) -> SessionsBackend:
    """The session and worklog stores of one database."""
    if request.param == "memory":
        return MemorySessions()
    return PostgresSessions(request.getfixturevalue("fresh_pg_url"))
