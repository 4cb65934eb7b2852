"""Embedders that implement :class:`engine.Embedder`."""
