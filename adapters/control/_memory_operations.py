"""The memory control operations: one msgspec struct per operation, the arguments it takes. Imports
no trio.

Every field has a limit from :mod:`engine._core._limits`: :data:`~engine.MEMORY_TEXT_MAX` for what
memory keeps (a message, a fact, a decision's body), :data:`~engine.DESCRIPTION_MAX` for a
decision's title, :data:`~engine.QUERY_MAX` for queries, :data:`~engine.GENERATION_TEXT_MAX` for
prompts and responses, :data:`~engine.NAME_MAX` for names, :data:`~engine.PATH_MAX` for paths,
:data:`~engine.LIST_MAX` items per list, :data:`~engine.RECALL_MAX` hits,
:data:`~engine.REHYDRATE_BUDGET_MAX` tokens and :data:`~engine.REHYDRATE_TIMEOUT_MAX` seconds, and
generation settings at most :data:`~engine.SETTINGS_MAX` bytes of JSON nested at most
:data:`~engine.SETTINGS_DEPTH_MAX` deep.

Scope: ``session`` is a session reference (an id, a unique prefix, a backlog id); ``repo`` is the
path of a repository's work tree. Memory written with a session goes to that session (and to the
repository of its work tree); written with only a repo, to the repository's own memory session;
with neither, to the daemon's default memory session. A search with ``repo`` finds the memory of
every session on that repository (with a session too: and that session's); without session and
repo it searches every session.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

import msgspec

from engine import (
    DESCRIPTION_MAX,
    GENERATION_TEXT_MAX,
    INT_MAX,
    LIST_MAX,
    MEMORY_TEXT_MAX,
    NAME_MAX,
    PATH_MAX,
    QUERY_MAX,
    RECALL_MAX,
    REHYDRATE_BUDGET_MAX,
    REHYDRATE_TIMEOUT_MAX,
    SETTINGS_DEPTH_MAX,
    SETTINGS_MAX,
)

__all__ = [
    "MEMORY_OPERATIONS",
    "CacheLookupArgs",
    "CacheStoreArgs",
    "DecideArgs",
    "MemoryArgs",
    "RecallArgs",
    "RehydrateArgs",
    "RehydrateRole",
    "RememberArgs",
]

_Name = Annotated[str, msgspec.Meta(min_length=1, max_length=NAME_MAX)]
_SessionRef = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=NAME_MAX,
        description="a session id, a unique id prefix, or a backlog id",
    ),
]
_Repo = Annotated[
    str,
    msgspec.Meta(
        min_length=1, max_length=PATH_MAX, description="the absolute path of a repository"
    ),
]
_Path = Annotated[str, msgspec.Meta(min_length=1, max_length=PATH_MAX)]
_Paths = Annotated[list[_Path], msgspec.Meta(max_length=LIST_MAX)]
_MemoryText = Annotated[str, msgspec.Meta(min_length=1, max_length=MEMORY_TEXT_MAX)]
_Query = Annotated[str, msgspec.Meta(min_length=1, max_length=QUERY_MAX)]
_Ttl = Annotated[float, msgspec.Meta(gt=0, description="seconds to keep it (null: forever)")]
_Prompt = Annotated[str, msgspec.Meta(min_length=1, max_length=GENERATION_TEXT_MAX)]
_Settings = Annotated[
    dict[str, Any],
    msgspec.Meta(
        max_length=LIST_MAX,
        description=(
            f"generation settings (part of the key): at most {SETTINGS_MAX} bytes of JSON,"
            f" nested at most {SETTINGS_DEPTH_MAX} deep"
        ),
    ),
]
#: The roles a bundle is packed for (the engine's :data:`~engine.ROLES`; a test holds them equal).
RehydrateRole = Literal["planner", "implementer", "coder", "researcher", "reviewer"]

_json: Final = msgspec.json.Encoder()


def _check_settings(settings: dict[str, Any]) -> None:
    """Refuse settings past :data:`~engine.SETTINGS_DEPTH_MAX` or :data:`~engine.SETTINGS_MAX`."""
    todo: list[tuple[Any, int]] = [(settings, 1)]
    while todo:
        value, depth = todo.pop()
        if isinstance(value, dict | list):
            if depth > SETTINGS_DEPTH_MAX:
                raise ValueError(f"settings are nested deeper than {SETTINGS_DEPTH_MAX}")
            todo.extend(
                (v, depth + 1) for v in (value.values() if isinstance(value, dict) else value)
            )
    size = len(_json.encode(settings))
    if size > SETTINGS_MAX:
        raise ValueError(f"settings are {size} bytes of JSON; the limit is {SETTINGS_MAX}")


class RememberArgs(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Remember a message or a fact; answers what was stored (its kind, id and session).

    ``{kind, id, session_id, repo, seq}`` for a message, ``{kind, id, session_id, repo, fact_type,
    key, pinned}`` for a fact.

    A fact is ``(fact_type, key) = text`` in its memory session: remembered again under the same
    key it is replaced (``key`` defaults to one derived from the text, so the same text is kept
    once); ``pinned`` facts lead every bundle of their session."""

    text: _MemoryText
    kind: Literal["message", "fact"] = "message"
    role: Literal["system", "user", "assistant", "tool"] = "user"
    session: _SessionRef | None = None
    repo: _Repo | None = None
    fact_type: _Name = "note"
    key: _Name | None = None
    ttl: _Ttl | None = None
    pinned: bool = False


class RecallArgs(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Search memory: the ``k`` best hits, best first (``{"hits": [...], "vector": ...}``).

    Each hit has ``kind`` (message, decision, fact), ``id``, ``session_id``, ``text``, its own
    fields, ``ranks`` and ``score`` (reciprocal rank fusion over every kind). Facts are matched by
    the words they share with the query within the scope (without session or repo: the default
    memory session). Superseded decisions are left out unless ``include_superseded``."""

    query: _Query
    k: Annotated[int, msgspec.Meta(ge=1, le=RECALL_MAX)] = 10
    session: _SessionRef | None = None
    repo: _Repo | None = None
    kind: Literal["messages", "decisions", "facts", "all"] = "all"
    include_superseded: bool = False


class DecideArgs(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Record a decision (``text`` is its title); answers the decision.

    With ``supersedes``, the new decision replaces that earlier one (which must be live and not
    superseded already); without a session or repo it goes where the one it replaces was."""

    text: Annotated[str, msgspec.Meta(min_length=1, max_length=DESCRIPTION_MAX)]
    body: Annotated[str, msgspec.Meta(max_length=MEMORY_TEXT_MAX)] = ""
    session: _SessionRef | None = None
    repo: _Repo | None = None
    supersedes: Annotated[int, msgspec.Meta(ge=1, le=INT_MAX)] | None = None
    files: _Paths = msgspec.field(default_factory=list)
    entities: _Paths = msgspec.field(default_factory=list)
    ttl: _Ttl | None = None


class RehydrateArgs(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """A memory bundle for ``query``, packed within ``budget`` tokens for ``role``.

    Answers the bundle: ``text`` (the packed items, each line led by its citation), ``items``
    (each with its ``citation``, ``source:id``), ``tokens``, ``token_budget``, ``sources`` (each
    source's report: ``ok``, ``timeout`` or ``error``), ``dropped``, ``digest``, ``repo``."""

    query: _Query
    role: RehydrateRole | None = None
    budget: Annotated[int, msgspec.Meta(ge=1, le=REHYDRATE_BUDGET_MAX)] = 2000
    session: _SessionRef | None = None
    repo: _Repo | None = None
    timeout: Annotated[float, msgspec.Meta(gt=0, le=REHYDRATE_TIMEOUT_MAX)] = 1.0


class CacheLookupArgs(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Look a generation up by prompt, model and settings (exact, then a guarded similar prompt).

    Answers ``{"hit", "outcome" (exact, similar or null), "response", "similarity", "key",
    "matched_key"}``."""

    prompt: _Prompt
    model: _Name
    settings: _Settings = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_settings(self.settings)


class CacheStoreArgs(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Store a generation (replacing any for the same prompt, model and settings): ``{"key"}``."""

    prompt: _Prompt
    model: _Name
    settings: _Settings = msgspec.field(default_factory=dict)
    response: Annotated[str, msgspec.Meta(max_length=GENERATION_TEXT_MAX)]
    ttl: _Ttl | None = None

    def __post_init__(self) -> None:
        _check_settings(self.settings)


#: The arguments of any memory operation.
MemoryArgs = (
    RememberArgs | RecallArgs | DecideArgs | RehydrateArgs | CacheLookupArgs | CacheStoreArgs
)

#: Every memory operation by its name on the wire.
MEMORY_OPERATIONS: Final[dict[str, type[MemoryArgs]]] = {
    "remember": RememberArgs,
    "recall": RecallArgs,
    "decide": DecideArgs,
    "rehydrate": RehydrateArgs,
    "cache_lookup": CacheLookupArgs,
    "cache_store": CacheStoreArgs,
}
