"""User text made safe to show on a terminal: every control character and bidi override written as
a visible escape. Imports no trio.

Session names, descriptions, tags, notes, commit subjects, branch names, file paths, summaries and
errors quoting any of them come from users, work trees and commits: a terminal must show them as
they are, never act on them. :func:`visible` is the one place that decides how; every renderer
for people (the CLI's tables and lines, the worklog's markdown and its mirror file, the
dashboard's copy in ``dashboard.js``) shows user text through it.

What is escaped, and how (Python's own notation, so it reads as what it is):

- C0 controls (U+0000-U+001F), DEL (U+007F) and C1 controls (U+0080-U+009F) as ``\\xNN``:
  ESC, ``\\x1b``, so an escape sequence ``ESC [31m`` shows as ``\\x1b[31m`` and does nothing.
  Tab, newline and carriage return as ``\\t``, ``\\n`` and ``\\r``, except that a multi-line field
  keeps tabs and newlines (a CR LF pair there becomes a newline).
- The bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069), which reorder what
  a reader sees, as ``\\u202e``.
- Lone surrogates (a file name that is not UTF-8, decoded with ``surrogateescape``) as
  ``\\udcff``: a terminal could not be sent them at all.

A backslash itself is left as it is (text stays readable; ``\\x1b`` typed by a user and an ESC
shown by :func:`visible` look the same, and neither does anything). Everything else, including
every printable non-ASCII letter, is shown unchanged. Applying :func:`visible` twice gives the
same text as once.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["visible"]

_NAMED: Final = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
_PATTERN: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
#: The same without tab and newline, which a multi-line field keeps.
_PATTERN_LINES: Final = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


def _escape(match: re.Match[str]) -> str:
    c = match.group()
    named = _NAMED.get(c)
    if named is not None:
        return named
    code = ord(c)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def visible(text: object, *, multiline: bool = False) -> str:
    """``text`` (``str()`` of it) with every control character and bidi override escaped.

    Args:
        text: what to show.
        multiline: keep newlines and tabs (for a note or a summary shown over several lines);
            otherwise they are escaped too, so the text stays on its line.
    """
    s = str(text)
    if not multiline:
        return _PATTERN.sub(_escape, s)
    return _PATTERN_LINES.sub(_escape, s.replace("\r\n", "\n"))
