"""The dashboard page's files: which paths serve which file of ``adapters/http/dashboard/`` (the
chart library under ``vendor/``) with which content type, read once from the package data, and
the page's content security policy."""

from __future__ import annotations

import importlib.resources
from typing import Final, final

__all__ = ["PAGE_CSP", "PAGE_FILES", "PageFiles"]

#: Each path the page's files are served at: the file and its content type.
PAGE_FILES: Final = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
    "/dom.js": ("dom.js", "text/javascript; charset=utf-8"),
    "/entries.js": ("entries.js", "text/javascript; charset=utf-8"),
    "/charts.js": ("charts.js", "text/javascript; charset=utf-8"),
    "/dashboard.css": ("dashboard.css", "text/css; charset=utf-8"),
    "/vendor/uPlot.iife.min.js": ("vendor/uPlot.iife.min.js", "text/javascript; charset=utf-8"),
    "/vendor/uPlot.min.css": ("vendor/uPlot.min.css", "text/css; charset=utf-8"),
    "/vendor/LICENSE": ("vendor/LICENSE", "text/plain; charset=utf-8"),
}
#: The page loads its own files only: no inline script, no other origin but the feed's websocket.
PAGE_CSP: Final = (
    b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


@final
class PageFiles:
    """The page's files, each read from the package data on first use and kept."""

    def __init__(self) -> None:
        self._files: dict[str, bytes] = {}

    def read(self, name: str) -> bytes:
        """The bytes of ``name`` (a file of :data:`PAGE_FILES`)."""
        data = self._files.get(name)
        if data is None:
            files = importlib.resources.files("adapters.http").joinpath("dashboard")
            data = files.joinpath(*name.split("/")).read_bytes()
            self._files[name] = data
        return data
