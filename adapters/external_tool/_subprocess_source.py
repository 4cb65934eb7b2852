"""An external tool as a memory source for the rehydrator, run as a subprocess in its own process group.

Citations are whatever ids the tool prints.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Mapping, Sequence
from typing import Final, final

import trio

from engine import Evidence, InvalidArgumentError, ScribeError, SourceQuery

__all__ = ["SubprocessSource", "SubprocessSourceError"]

_MAX_OUTPUT: Final = 4 * 1024 * 1024


class SubprocessSourceError(ScribeError):
    """An external source tool failed (non-zero exit) or printed something that is not evidence."""


async def _kill_group(process: trio.Process) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:  # already gone
        pass
    await process.wait()


@final
class SubprocessSource:
    """An external tool as a memory source.

    The tool is started once per search with ``argv`` in its own process group. It reads one
    JSON object on stdin (``{"query", "session_id", "role", "limit"}``) and prints one JSON object
    per line: ``{"id": str, "text": str}`` and optionally ``"rank": int`` and ``"pinned": bool``.
    Lines are taken best first.

    Args:
        name: The source name.
        argv: The command.
        env: Extra environment variables.
        cwd: Working directory.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> None:
        if not argv or any(not isinstance(a, str) for a in argv) or isinstance(argv, str):
            raise InvalidArgumentError("argv must be a non-empty sequence of strings")
        self._name = name
        self._argv = list(argv)
        self._env = dict(env) if env is not None else None
        self._cwd = cwd

    @property
    def name(self) -> str:
        """The source name."""
        return self._name

    async def search(self, query: SourceQuery) -> Sequence[Evidence]:
        """Run the tool and parse its output.

        Raises:
            SubprocessSourceError: The tool exited non-zero or printed bad lines.

        Cancellation: the tool's whole process group is killed (SIGKILL) and reaped.
        """
        request = json.dumps(
            {
                "query": query.text,
                "session_id": query.session_id,
                "role": query.role,
                "limit": query.limit,
            }
        ).encode()
        env = None if self._env is None else {**os.environ, **self._env}
        result = await trio.run_process(
            self._argv,
            stdin=request,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            start_new_session=True,
            deliver_cancel=_kill_group,
            env=env,
            cwd=self._cwd,
        )
        if result.returncode != 0:
            tail = result.stderr.decode(errors="replace").strip()[-500:]
            raise SubprocessSourceError(
                f"source {self._name!r}: {self._argv[0]} exited with {result.returncode}: {tail}"
            )
        if len(result.stdout) > _MAX_OUTPUT:
            raise SubprocessSourceError(f"source {self._name!r}: output larger than 4 MiB")
        items: list[Evidence] = []
        for number, line in enumerate(result.stdout.decode(errors="replace").splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                item_id, text = obj["id"], obj["text"]
                rank = obj.get("rank")
                if not isinstance(item_id, str | int) or not isinstance(text, str):
                    raise TypeError("id must be a string or int and text a string")
                if rank is not None and (not isinstance(rank, int) or rank < 1):
                    raise TypeError("rank must be a positive int")
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise SubprocessSourceError(
                    f"source {self._name!r}: line {number} is not an evidence object: {exc}"
                ) from None
            items.append(
                Evidence(
                    source=self._name,
                    id=str(item_id),
                    text=text,
                    ranks={"tool": rank} if rank is not None else {},
                    pinned=bool(obj.get("pinned", False)),
                )
            )
            if len(items) >= query.limit:
                break
        return items
