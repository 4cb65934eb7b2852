"""Construction rules: a metaclass for objects that hold a resource or a task and so have no public constructor."""

from __future__ import annotations

from abc import ABCMeta
from typing import Any, NoReturn, TypeVar

__all__ = ["NoPublicConstructor"]

_T = TypeVar("_T")


class NoPublicConstructor(ABCMeta):
    """Metaclass for classes whose instances are only handed out by an ``open_*`` call or by their owner.

    ``SomeClass(...)`` raises :class:`TypeError`; the owning code builds one with ``SomeClass._create(...)``.
    Use it for anything that holds a resource or a task, so a caller cannot get a half-made object that
    fails later::

        @final
        class Session(metaclass=NoPublicConstructor):
            ...

        session = Session._create(engine, name)  # inside the engine only

    It derives from :class:`abc.ABCMeta`, so it combines with abstract bases; a class that also names a
    ``typing.Protocol`` as a base needs a metaclass deriving from both.
    """

    def __call__(cls, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError(
            f"{cls.__module__}.{cls.__qualname__} has no public constructor; "
            "get one from its open_* function or its owner"
        )

    def _create(cls: type[_T], *args: Any, **kwargs: Any) -> _T:
        """Build an instance; for the code that owns this class only."""
        return super().__call__(*args, **kwargs)  # type: ignore[misc, no-any-return]
