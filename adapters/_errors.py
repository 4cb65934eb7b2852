"""The one mechanism by which every adapter family translates the errors of what it drives.

Each family keeps one table (:data:`ErrorTable`) in one place, from a foreign error type to the
family's typed error, in the style of httpcore's ``map_exceptions``::

    with map_exceptions(_GIT_ERRORS):
        await trio.run_process(...)

The first entry whose type matches is used (order entries from the most specific type to the most
general); its translator returns the typed error, which is raised ``from`` the original so the cause is
kept, or None to let the original through unchanged. Only :class:`Exception` is looked at: a
``trio.Cancelled``, a ``KeyboardInterrupt`` or any other ``BaseException`` is never mapped, and neither
is an error that matches no entry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeAlias

__all__ = ["ErrorTable", "map_exceptions", "mapped_exception"]

#: Foreign error type -> translator (the typed error, or None: pass the original through).
ErrorTable: TypeAlias = Mapping[type[Exception], Callable[[Any], Exception | None]]


def mapped_exception(table: ErrorTable, exc: BaseException) -> Exception | None:
    """The typed error ``table`` gives for ``exc``, or None when it gives none (no entry matches, the
    entry passes it through, or ``exc`` is not an :class:`Exception`)."""
    if not isinstance(exc, Exception):
        return None
    for kind, translate in table.items():
        if isinstance(exc, kind):
            return translate(exc)
    return None


@contextmanager
def map_exceptions(table: ErrorTable) -> Iterator[None]:
    """Translate an error raised in the block through ``table``, raising the typed one ``from`` it.

    Cancellation: never mapped (``trio.Cancelled`` is not an ``Exception``); it passes through.
    """
    try:
        yield
    except Exception as exc:
        mapped = mapped_exception(table, exc)
        if mapped is None or mapped is exc:
            raise
        raise mapped from exc
