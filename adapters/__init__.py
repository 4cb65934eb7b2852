"""Adapters that implement the engine's protocols over git, the filesystem, PostgreSQL and websockets."""
