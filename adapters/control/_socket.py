"""The daemon's control channel: JSON lines over a unix socket (``$SCRIBE_HOME/scribe.sock``).

The server reads one request per line, validates it (:func:`adapters.control._protocol.parse_control_request`),
hands it to the daemon's handler and writes one response line; a malformed request gets an error
response and the connection stays usable. An operation that watches (``watch``) answers once, then
streams one event line per item (:class:`~adapters.control._stream.ControlStream`) until the client
closes the connection. At most ``max_connections`` connections are served at once
(one more is sent a :class:`ControlLimitError` line and closed), and a connection that sends no
complete request line within ``idle_timeout`` seconds (counted from when it opened or its last
answer) is sent one too and closed, so idle or slow clients cannot pile up. The client is synchronous (the CLI is), with a timeout, and
says plainly when no daemon runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, final

import trio

import engine
from adapters.control._protocol import (
    MAX_CONTROL_LINE,
    ControlProtocolError,
    ControlRequest,
    encode_control_error,
    encode_control_event,
    encode_control_result,
    parse_control_request,
)
from adapters.control._stream import ControlStream

__all__ = [
    "DEFAULT_CONTROL_CONNECTIONS",
    "DEFAULT_CONTROL_IDLE_TIMEOUT",
    "ControlLimitError",
    "ControlServer",
    "ControlServerStatistics",
    "DaemonAlreadyRunningError",
    "open_control_server",
]

_log = logging.getLogger(__name__)

#: The longest unix socket path Linux takes (``sun_path`` is 108 bytes with its NUL).
MAX_SOCKET_PATH: Final = 107
_READ: Final = 65536
#: Control connections served at once, by default.
DEFAULT_CONTROL_CONNECTIONS: Final = 64
#: Seconds a control connection may take to send a complete request line, by default.
DEFAULT_CONTROL_IDLE_TIMEOUT: Final = 60.0

Handler = Callable[[ControlRequest], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class _Failed:
    line: bytes


class DaemonAlreadyRunningError(engine.ScribeError):
    """Another daemon already answers on the control socket."""


class ControlLimitError(engine.ScribeError):
    """A control connection was refused or closed: too many are open, or it sent no complete request
    within the idle timeout."""


@dataclass(frozen=True, slots=True)
class ControlServerStatistics:
    """Counters of a :class:`ControlServer`.

    Attributes:
        connections: connections open now.
        requests: requests answered.
        errors: requests answered with an error.
        refused: connections refused because ``max_connections`` were open.
        timed_out: connections closed because they sent no complete request in time.
        watching: connections streaming a watch now.
    """

    connections: int
    requests: int
    errors: int
    refused: int = 0
    timed_out: int = 0
    watching: int = 0


def _check_path(given: str | os.PathLike[str]) -> Path:
    path = Path(os.path.abspath(given))
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise engine.InvalidArgumentError(
            f"control socket path is longer than {MAX_SOCKET_PATH} bytes: {path} "
            "(choose a shorter SCRIBE_HOME)"
        )
    return path


def _answers(path: Path) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(1.0)
    try:
        s.connect(str(path))
    except OSError:
        return False
    finally:
        s.close()
    return True


def _clear_stale(where: Path) -> None:
    if not (where.exists() or where.is_symlink()):
        return
    if _answers(where):
        raise DaemonAlreadyRunningError(f"a scribe daemon already answers on {where}")
    if not stat.S_ISSOCK(where.lstat().st_mode):
        raise engine.InvalidArgumentError(f"{where} exists and is not a socket")
    where.unlink()


@final
class ControlServer:
    """A listening control socket. Get one from :func:`open_control_server`."""

    def __init__(
        self, path: Path, handler: Handler, max_connections: int, idle_timeout: float
    ) -> None:
        self.path = path
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self._handler = handler
        self._connections = 0
        self._requests = 0
        self._errors = 0
        self._refused = 0
        self._timed_out = 0
        self._watching = 0

    def statistics(self) -> ControlServerStatistics:
        """A snapshot of the server's counters."""
        return ControlServerStatistics(
            self._connections,
            self._requests,
            self._errors,
            self._refused,
            self._timed_out,
            self._watching,
        )

    async def _answer(self, line: bytes) -> tuple[int | str | None, Any]:
        """The request's id and the handler's result, or an error line to send."""
        self._requests += 1
        rid = None
        try:
            request = parse_control_request(line)
            rid = request.id
            return rid, await self._handler(request)
        except Exception as exc:
            self._errors += 1
            inner = (
                exc.exceptions[0]
                if isinstance(exc, ExceptionGroup) and len(exc.exceptions) == 1
                else exc
            )
            if isinstance(inner, engine.ScribeError):
                # a refusal (bad input, unknown session ...): the client is told; routine here
                _log.debug("control request refused: %s: %s", type(exc).__name__, exc)
            else:
                _log.warning("control request failed", exc_info=exc)
            return rid, _Failed(encode_control_error(rid, exc))

    async def _respond(self, stream: trio.SocketStream, line: bytes) -> bool:
        """Answer one request line; False when the connection is done (a watch ended)."""
        rid, result = await self._answer(line)
        if isinstance(result, _Failed):
            await stream.send_all(result.line)
            return True
        if not isinstance(result, ControlStream):
            await stream.send_all(encode_control_result(rid, result))
            return True
        self._watching += 1
        try:
            async with result.open_items() as items:
                await stream.send_all(encode_control_result(rid, result.first))
                async with trio.open_nursery() as nursery:
                    # the client sends nothing more on a watch; its closing ends the stream
                    nursery.start_soon(self._until_closed, stream, nursery.cancel_scope)
                    async for item in items:
                        await stream.send_all(encode_control_event(rid, item))
                    nursery.cancel_scope.cancel()
        except* (trio.BrokenResourceError, trio.ClosedResourceError):
            _log.debug("a watching control client went away")
        except* Exception as group:
            _log.warning("a control watch ended on an error", exc_info=group)
        finally:
            self._watching -= 1
        return False

    @staticmethod
    async def _until_closed(stream: trio.SocketStream, scope: trio.CancelScope) -> None:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            while await stream.receive_some(_READ):
                pass
        scope.cancel()

    async def _refuse(self, stream: trio.SocketStream, error: BaseException) -> None:
        with trio.move_on_after(1.0):
            await stream.send_all(encode_control_error(None, error))

    async def _line(self, stream: trio.SocketStream, buffer: bytearray) -> bytes | None:
        """The next non-blank request line (None: the client closed); raises TooSlowError past the
        idle timeout."""
        with trio.fail_after(self.idle_timeout):
            while True:
                nl = buffer.find(b"\n")
                if nl >= 0:
                    line = bytes(buffer[:nl])
                    del buffer[: nl + 1]
                    if line.strip():
                        return line
                    continue
                if len(buffer) > MAX_CONTROL_LINE:
                    raise ControlProtocolError(f"request longer than {MAX_CONTROL_LINE} bytes")
                chunk = await stream.receive_some(_READ)
                if not chunk:
                    return None
                buffer += chunk

    async def _serve(self, stream: trio.SocketStream) -> None:
        async with stream:
            if self._connections >= self.max_connections:
                self._refused += 1
                _log.debug("control connection refused: %d open", self._connections)
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await self._refuse(
                        stream,
                        ControlLimitError(
                            f"the daemon already serves {self.max_connections} control "
                            "connections (the limit); try again"
                        ),
                    )
                return
            self._connections += 1
            buffer = bytearray()
            try:
                while True:
                    try:
                        line = await self._line(stream, buffer)
                    except ControlProtocolError as exc:
                        await self._refuse(stream, exc)
                        return
                    except trio.TooSlowError:
                        self._timed_out += 1
                        _log.debug("control connection idle for %g s: closed", self.idle_timeout)
                        await self._refuse(
                            stream,
                            ControlLimitError(
                                f"no complete request within {self.idle_timeout:g} s; closing"
                            ),
                        )
                        return
                    if line is None or not await self._respond(stream, line):
                        return
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                _log.debug("a control client went away")
                return
            finally:
                self._connections -= 1


@contextlib.asynccontextmanager
async def open_control_server(
    path: str | os.PathLike[str],
    handler: Handler,
    *,
    max_connections: int = DEFAULT_CONTROL_CONNECTIONS,
    idle_timeout: float = DEFAULT_CONTROL_IDLE_TIMEOUT,
) -> AsyncIterator[ControlServer]:
    """Serve control requests on a unix socket at ``path`` for the duration of the block.

    A socket file left by a daemon that died is replaced; one a live daemon answers on is not. The
    socket is readable and writable by its owner only, and removed when the block ends. At most
    ``max_connections`` connections are served at once; a connection sending no complete request
    line for ``idle_timeout`` seconds (from its opening or its last answer) is closed.

    Raises:
        DaemonAlreadyRunningError: a daemon already answers at ``path``.
        InvalidArgumentError: the path is too long for a unix socket, or a bad limit.

    Cancellation: leaving the block (or its cancellation) stops accepting, cancels requests being
    answered and removes the socket file.
    """
    if (
        isinstance(max_connections, bool)
        or not isinstance(max_connections, int)
        or max_connections < 1
    ):
        raise engine.InvalidArgumentError(
            f"max_connections must be an int >= 1, not {max_connections!r}"
        )
    timeout = engine.check_seconds("idle_timeout", idle_timeout)
    where = _check_path(path)
    await trio.to_thread.run_sync(_clear_stale, where)
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        await sock.bind(str(where))
        os.chmod(where, 0o600)
        sock.listen(64)
    except BaseException:
        sock.close()
        raise
    server = ControlServer(where, handler, max_connections, timeout)
    listener = trio.SocketListener(sock)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.serve_listeners, server._serve, [listener])
            try:
                yield server
            finally:
                nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await listener.aclose()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(where)
