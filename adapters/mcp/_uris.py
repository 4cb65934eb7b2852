"""The URIs of the sessions' resources: ``scribe://sessions/{id}/worklog`` and ``.../summary``.

``{id}`` is anything a session argument accepts (a Scribe id, a unique prefix, a backlog id, the
agent's own session id), at most :data:`~engine.NAME_MAX` characters of ``[A-Za-z0-9._:-]`` (so it
needs no escaping and cannot reach another path).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal, final

from engine import NAME_MAX

__all__ = ["RESOURCE_KINDS", "SUMMARY_TEMPLATE", "WORKLOG_TEMPLATE", "ResourceUri", "parse_uri"]

ResourceKind = Literal["worklog", "summary"]
RESOURCE_KINDS: Final[tuple[ResourceKind, ...]] = ("worklog", "summary")
WORKLOG_TEMPLATE: Final = "scribe://sessions/{id}/worklog"
SUMMARY_TEMPLATE: Final = "scribe://sessions/{id}/summary"
_URI: Final = re.compile(rf"scribe://sessions/([A-Za-z0-9._:-]{{1,{NAME_MAX}}})/(worklog|summary)")


@final
@dataclass(frozen=True, slots=True)
class ResourceUri:
    """A parsed resource URI: which session (as given) and which of its resources."""

    session: str
    kind: ResourceKind

    def __str__(self) -> str:
        return f"scribe://sessions/{self.session}/{self.kind}"


def parse_uri(uri: str) -> ResourceUri | None:
    """The resource ``uri`` names, or None when it names none of Scribe's."""
    if len(uri) > 64 + NAME_MAX:
        return None
    m = _URI.fullmatch(uri)
    if m is None:
        return None
    kind: ResourceKind = "worklog" if m.group(2) == "worklog" else "summary"
    return ResourceUri(m.group(1), kind)
