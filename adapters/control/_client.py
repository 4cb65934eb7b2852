"""Clients of the daemon's control socket: a synchronous one for the command line and a trio one
for long-lived clients (the MCP server), which calls concurrently and watches.

Both say plainly when no daemon runs (:class:`DaemonNotRunningError`) and bound every wait.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import socket
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, Final, final

import trio

import engine

from ._protocol import (
    MAX_CONTROL_LINE,
    ControlProtocolError,
    DaemonNotRunningError,
    control_response_id,
    decode_control_event,
    decode_control_response,
    encode_control_request,
)

__all__ = [
    "AsyncControlClient",
    "ControlClient",
    "ControlWatch",
    "open_control_client",
]

_READ: Final = 65536
#: The longest answer either client reads, in bytes.
MAX_ANSWER: Final = 64 * MAX_CONTROL_LINE
#: Seconds an idle pooled connection is reused for (the server closes idle ones after 60 s).
REUSE_WINDOW: Final = 20.0
#: Idle connections a trio client keeps.
POOL_SIZE: Final = 8


def _not_running(path: Path, exc: OSError) -> DaemonNotRunningError:
    return DaemonNotRunningError(
        f"no scribe daemon is running (nothing answers on {path}"
        + (f": {exc.strerror}" if exc.strerror else "")
        + "); start one with `scribe serve`"
    )


def _refused_connect(exc: OSError) -> bool:
    return isinstance(exc, FileNotFoundError | ConnectionRefusedError) or exc.errno in (
        errno.ENOTSOCK,
        errno.ENOENT,
        errno.ECONNREFUSED,
    )


@final
class ControlClient:
    """A synchronous client of the daemon's control socket (what the CLI uses).

    Args:
        path: the control socket.
        timeout: seconds to wait for each answer.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 60.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._ids = itertools.count(1)

    def call(self, op: str, args: Mapping[str, Any] | None = None) -> Any:
        """Send one request and return its result.

        Raises:
            DaemonNotRunningError: nothing answers on the socket.
            DaemonError: the daemon answered with an error (its type and message).
            ControlProtocolError: the answer was malformed.
            TimeoutError: no answer within the timeout.
        """
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            try:
                s.connect(str(self.path))
            except OSError as exc:
                if _refused_connect(exc):
                    raise _not_running(self.path, exc) from exc
                raise
            s.sendall(encode_control_request(next(self._ids), op, args or {}))
            buffer = bytearray()
            while b"\n" not in buffer:
                chunk = s.recv(_READ)
                if not chunk:
                    raise DaemonNotRunningError("the scribe daemon closed the connection")
                buffer += chunk
                if len(buffer) > MAX_ANSWER:
                    raise ControlProtocolError("response too long")
            line = bytes(buffer[: buffer.index(b"\n")])
        finally:
            s.close()
        _, result = decode_control_response(line)
        return result


class _Closed(Exception):
    """The daemon closed the connection."""


@final
class _Connection:
    __slots__ = ("buffer", "idle_since", "stream")

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = bytearray()
        self.idle_since = 0.0

    async def line(self) -> bytes:
        while True:
            nl = self.buffer.find(b"\n")
            if nl >= 0:
                out = bytes(self.buffer[:nl])
                del self.buffer[: nl + 1]
                return out
            if len(self.buffer) > MAX_ANSWER:
                raise ControlProtocolError("response too long")
            chunk = await self.stream.receive_some(_READ)
            if not chunk:
                raise _Closed
            self.buffer += chunk


@final
class ControlWatch:
    """A watch: the daemon's first answer, then its events (``async for``) until the daemon ends the
    stream or goes away (the iteration then just ends). Get one from
    :meth:`AsyncControlClient.open_watch`."""

    def __init__(self, first: Any, connection: _Connection) -> None:
        self.first = first
        self._connection = connection

    def __aiter__(self) -> ControlWatch:
        return self

    async def __anext__(self) -> Any:
        """The next event.

        Raises:
            DaemonError: the daemon ended the stream on an error.

        Cancellation: nothing is lost that was not read yet; the next call goes on.
        """
        try:
            line = await self._connection.line()
        except (_Closed, trio.BrokenResourceError, trio.ClosedResourceError):
            raise StopAsyncIteration from None
        return decode_control_event(line)


@final
class AsyncControlClient(metaclass=engine.NoPublicConstructor):
    """A trio client of the control socket. Calls may run concurrently: each takes a connection of
    its own from a small pool (the daemon answers a connection's requests in order), and a
    connection the daemon closed while idle is replaced without the call noticing. Get one from
    :func:`open_control_client`.

    Attributes:
        path: the control socket.
        timeout: seconds each call waits for its answer.
    """

    def __init__(self, path: Path, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._idle: list[_Connection] = []
        self._closed = False

    async def _connect(self) -> _Connection:
        try:
            with trio.fail_after(self.timeout):
                stream = await trio.open_unix_socket(os.fspath(self.path))
        except trio.TooSlowError:
            raise TimeoutError(
                f"the scribe daemon did not accept a connection within {self.timeout:g} s"
            ) from None
        except OSError as exc:
            if _refused_connect(exc):
                raise _not_running(self.path, exc) from exc
            raise
        return _Connection(stream)

    async def _take(self) -> tuple[_Connection, bool]:
        now = trio.current_time()
        while self._idle:
            conn = self._idle.pop()
            if now - conn.idle_since < REUSE_WINDOW and not conn.buffer:
                return conn, True
            await trio.aclose_forcefully(conn.stream)
        return await self._connect(), False

    async def _give(self, conn: _Connection) -> None:
        if self._closed or len(self._idle) >= POOL_SIZE:
            await trio.aclose_forcefully(conn.stream)
            return
        conn.idle_since = trio.current_time()
        self._idle.append(conn)

    async def _exchange(
        self, conn: _Connection, rid: int, op: str, payload: Mapping[str, Any]
    ) -> bytes:
        """One request line sent on ``conn`` and the line answering it, within the timeout."""
        try:
            with trio.fail_after(self.timeout):
                await conn.stream.send_all(encode_control_request(rid, op, payload))
                return await conn.line()
        except (_Closed, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise DaemonNotRunningError(
                "the scribe daemon closed the connection before answering"
            ) from exc
        except trio.TooSlowError:
            raise TimeoutError(
                f"the scribe daemon did not answer {op!r} within {self.timeout:g} s"
            ) from None

    async def call(self, op: str, args: Mapping[str, Any] | None = None) -> Any:
        """Send one request and return its result.

        Raises:
            DaemonNotRunningError: no daemon answers, or it went away before answering.
            DaemonError: the daemon answered with an error (its type and message).
            ControlProtocolError: the answer was malformed.
            TimeoutError: no answer within :attr:`timeout`.

        Cancellation: the request may still be carried out by the daemon; its connection is closed
        (never reused for another answer).
        """
        if self._closed:
            raise engine.InvalidArgumentError("this control client is closed")
        payload = dict(args or {})
        for attempt in range(2):
            conn, reused = await self._take()
            keep = False
            try:
                rid = next(self._ids)
                try:
                    line = await self._exchange(conn, rid, op, payload)
                except DaemonNotRunningError:
                    if reused and attempt == 0:
                        continue  # the daemon closed it while idle: it never read this request
                    raise
                ours = control_response_id(line) == rid
                if not ours and reused and attempt == 0:
                    continue  # a refusal of the idle connection, sent before this request was read
                keep = ours
                _, result = decode_control_response(line)
                return result
            finally:
                if keep:
                    await self._give(conn)
                else:
                    await trio.aclose_forcefully(conn.stream)
        raise DaemonNotRunningError("the scribe daemon closed the connection before answering")

    @contextlib.asynccontextmanager
    async def open_watch(
        self, op: str, args: Mapping[str, Any] | None = None
    ) -> AsyncIterator[ControlWatch]:
        """Start a watching operation on a connection of its own, for the duration of the block.

        Raises:
            DaemonNotRunningError: no daemon answers.
            DaemonError: the daemon refused the watch.
            TimeoutError: no first answer within :attr:`timeout`.

        Cancellation: the connection is closed, which ends the watch in the daemon.
        """
        conn = await self._connect()
        try:
            line = await self._exchange(conn, next(self._ids), op, dict(args or {}))
            _, first = decode_control_response(line)
            yield ControlWatch(first, conn)
        finally:
            await trio.aclose_forcefully(conn.stream)

    async def aclose(self) -> None:
        """Close the pooled connections; calls after this are refused.

        Cancellation: the connections are closed all the same.
        """
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            await trio.aclose_forcefully(conn.stream)


@contextlib.asynccontextmanager
async def open_control_client(
    path: str | os.PathLike[str], *, timeout: float = 60.0
) -> AsyncIterator[AsyncControlClient]:
    """A trio control client for the duration of the block. Nothing is connected until the first
    call, so this works (and its calls fail plainly) when no daemon runs yet.

    Raises:
        InvalidArgumentError: a bad timeout.

    Cancellation: leaving the block closes every pooled connection.
    """
    client = AsyncControlClient._create(Path(path), engine.check_seconds("timeout", timeout))
    try:
        yield client
    finally:
        with trio.CancelScope(shield=True):
            await client.aclose()
