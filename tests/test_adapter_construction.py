"""Adapter objects that hold a resource or a task have no public constructor: they come from open_*."""

from __future__ import annotations

import pytest

import adapters
import engine

# Each one is handed out by the call named beside it.
WITHOUT_PUBLIC_CONSTRUCTOR = [
    (adapters.Database, "open_database"),
    (adapters.SessionRegistry, "open_session_registry"),
    (adapters.InotifyWatcher, "open_watcher"),
    (adapters.FeedServer, "open_feed_server"),
    (adapters.Dashboard, "open_dashboard"),
    (adapters.GitRepository, "open_repository"),
]


@pytest.mark.parametrize(
    ("cls", "opener"),
    WITHOUT_PUBLIC_CONSTRUCTOR,
    ids=[c.__name__ for c, _ in WITHOUT_PUBLIC_CONSTRUCTOR],
)
def test_direct_construction_raises_type_error(cls: type, opener: str) -> None:
    assert isinstance(cls, engine.NoPublicConstructor)
    assert callable(getattr(adapters, opener))
    assert opener in (cls.__doc__ or "")  # the class says where to get one
    with pytest.raises(TypeError, match="no public constructor"):
        cls()
    with pytest.raises(TypeError, match="no public constructor"):
        cls("anything", key="value")
