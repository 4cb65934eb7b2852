"""Scribe engine: a trio nursery tree of coding sessions."""
