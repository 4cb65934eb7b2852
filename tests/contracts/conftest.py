"""Harness fixtures of the contract tests: each is parametrized over every implementation of a port."""

from __future__ import annotations

from pathlib import Path

import pytest
from contracts.backends import (
    DiskFiles,
    FedWatch,
    FilesBackend,
    GenerationsBackend,
    GitBackend,
    InotifyWatch,
    MemoriesBackend,
    MemoryFiles,
    MemoryGenerations,
    MemoryGit,
    MemoryMemories,
    MemoryMetrics,
    MemorySessions,
    MetricsBackend,
    PostgresGenerations,
    PostgresMemories,
    PostgresMetrics,
    PostgresSessions,
    RealGit,
    SessionsBackend,
    WatchBackend,
)


@pytest.fixture(params=["memory", "postgres"])
def sessions(request: pytest.FixtureRequest) -> SessionsBackend:
    """The session and worklog stores of one database."""
    if request.param == "memory":
        return MemorySessions()
    return PostgresSessions(request.getfixturevalue("fresh_pg_url"))


@pytest.fixture(params=["memory", "disk"])
def files(request: pytest.FixtureRequest, tmp_path: Path) -> FilesBackend:
    """A file system over a small tree."""
    return MemoryFiles() if request.param == "memory" else DiskFiles(tmp_path)


@pytest.fixture(params=["memory", "git"])
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> GitBackend:
    """A new repository on branch ``main`` with no commit yet."""
    return MemoryGit() if request.param == "memory" else RealGit(tmp_path / "repo")


@pytest.fixture(params=["memory", "inotify"])
def watch(request: pytest.FixtureRequest, tmp_path: Path) -> WatchBackend:
    """A watcher of a directory and a way to change it."""
    return FedWatch() if request.param == "memory" else InotifyWatch(tmp_path)


@pytest.fixture(params=["memory", "postgres"])
def generations(request: pytest.FixtureRequest) -> GenerationsBackend:
    """A generation cache store (an empty one)."""
    if request.param == "memory":
        return MemoryGenerations()
    return PostgresGenerations(request.getfixturevalue("fresh_pg_url"))


@pytest.fixture(params=["memory", "postgres"])
def memories(request: pytest.FixtureRequest) -> MemoriesBackend:
    """A conversation-memory store (an empty one)."""
    if request.param == "memory":
        return MemoryMemories()
    return PostgresMemories(request.getfixturevalue("fresh_pg_url"))


@pytest.fixture(params=["memory", "postgres"])
def metrics(request: pytest.FixtureRequest) -> MetricsBackend:
    """A metric history store (an empty one)."""
    if request.param == "memory":
        return MemoryMetrics()
    return PostgresMetrics(request.getfixturevalue("fresh_pg_url"))
