"""The installed version of Scribe, as its distribution's metadata says."""

from __future__ import annotations

import importlib.metadata
from typing import Final

__all__ = ["DISTRIBUTION", "scribe_version"]

#: The distribution that installs the ``scribe`` command.
DISTRIBUTION: Final = "scribe-engine"


def scribe_version() -> str:
    """The installed distribution's version, or ``"unknown (not installed)"`` when it is not installed."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"
