"""The feed's client-to-server messages, validated with msgspec (see docs/feed.md for the schema).

Every incoming text frame is one JSON object with a ``type``: ``subscribe``, ``unsubscribe``,
``ping`` or ``command``. :func:`decode_client_message` turns a frame into one of the structs below or
raises :class:`FeedProtocolError` with a machine-readable ``code``. A frame is at most
:data:`~engine.FEED_MESSAGE_MAX` bytes and its fields have the engine's limits
(:data:`~engine.NAME_MAX` for topics and session ids).
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

import msgspec

from engine import FEED_MESSAGE_MAX, INT_MAX, NAME_MAX, ScribeError

__all__ = [
    "ClientMessage",
    "Command",
    "FeedProtocolError",
    "Ping",
    "Since",
    "Subscribe",
    "Unsubscribe",
    "client_message_schema",
    "decode_client_message",
    "text_frame",
]

_TOPIC = Annotated[str, msgspec.Meta(min_length=1, max_length=NAME_MAX)]
_ID = Annotated[str, msgspec.Meta(max_length=100)] | Annotated[int, msgspec.Meta(ge=0)] | None
KNOWN_TYPES: Final = frozenset({"subscribe", "unsubscribe", "ping", "command"})


class FeedProtocolError(ScribeError):
    """A client message is not valid JSON, not a known command or does not match the schema.

    Attributes:
        code: ``invalid_json``, ``unknown_command``, ``invalid_message`` or ``message_too_large``.
        request_id: the message's ``id`` when it could be read.
    """

    def __init__(self, code: str, message: str, request_id: str | int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.request_id = request_id


class Since(msgspec.Struct, forbid_unknown_fields=True):
    """A resume position: the epoch and offset of the last event the client has, and for a
    ``worklog:<id>`` topic optionally the seq of the last entry it has (which holds across epochs:
    a restarted daemon, another daemon of the same database)."""

    epoch: Annotated[str, msgspec.Meta(max_length=64)]
    offset: Annotated[int, msgspec.Meta(ge=0)]
    seq: Annotated[int, msgspec.Meta(ge=0, le=INT_MAX)] | None = None


class Subscribe(msgspec.Struct, tag="subscribe", tag_field="type", forbid_unknown_fields=True):
    """Subscribe to a topic, optionally resuming after ``since``."""

    topic: _TOPIC
    since: Since | None = None
    id: _ID = None


class Unsubscribe(msgspec.Struct, tag="unsubscribe", tag_field="type", forbid_unknown_fields=True):
    """Stop receiving a topic."""

    topic: _TOPIC
    id: _ID = None


class Ping(msgspec.Struct, tag="ping", tag_field="type", forbid_unknown_fields=True):
    """Ask for a ``pong`` (an application-level liveness check, e.g. from a browser)."""

    id: _ID = None


class Command(msgspec.Struct, tag="command", tag_field="type", forbid_unknown_fields=True):
    """A control command; needs a token with the ``control`` scope."""

    command: Literal["cancel_session"]
    session_id: Annotated[str, msgspec.Meta(min_length=1, max_length=NAME_MAX)]
    grace: Annotated[float, msgspec.Meta(ge=0, le=300)] = 0.0
    id: _ID = None


ClientMessage = Subscribe | Unsubscribe | Ping | Command

_decoder: Final = msgspec.json.Decoder(ClientMessage)


class _Envelope(msgspec.Struct):
    type: Any = None
    id: Any = None


_envelope_decoder: Final = msgspec.json.Decoder(_Envelope)


def decode_client_message(data: str | bytes) -> ClientMessage:
    """Decode and validate one client frame.

    Raises:
        FeedProtocolError: with code ``invalid_json`` (not JSON), ``unknown_command`` (a ``type``
            the server does not know), ``invalid_message`` (fields do not match the schema) or
            ``message_too_large`` (over :data:`~engine.FEED_MESSAGE_MAX` bytes).
    """
    size = len(data.encode() if isinstance(data, str) else data)
    if size > FEED_MESSAGE_MAX:
        raise FeedProtocolError(
            "message_too_large",
            f"a client message is at most {FEED_MESSAGE_MAX} bytes; this one is {size}",
        )
    try:
        message: ClientMessage = _decoder.decode(data)
    except msgspec.ValidationError as exc:
        detail = str(exc)
        try:
            envelope = _envelope_decoder.decode(data)
        except msgspec.DecodeError:
            raise FeedProtocolError(
                "invalid_message", f"a message is a JSON object: {detail}"
            ) from exc
        rid = envelope.id if isinstance(envelope.id, str | int) else None
        if isinstance(envelope.type, str) and envelope.type not in KNOWN_TYPES:
            raise FeedProtocolError(
                "unknown_command", f"unknown message type {envelope.type[:50]!r}", rid
            ) from exc
        raise FeedProtocolError("invalid_message", detail, rid) from exc
    except msgspec.DecodeError as exc:
        raise FeedProtocolError("invalid_json", f"invalid JSON: {exc}") from exc
    return message


def client_message_schema() -> dict[str, Any]:
    """The JSON Schema of client messages (generated from the structs above)."""
    return msgspec.json.schema(ClientMessage)


def text_frame(payload: bytes) -> bytes:
    """The websocket frame (RFC 6455, unmasked as a server sends it, no extension) of one whole text
    message whose UTF-8 bytes are ``payload``."""
    size = len(payload)
    if size < 126:
        head = bytes((0x81, size))
    elif size < 1 << 16:
        head = b"\x81\x7e" + size.to_bytes(2, "big")
    else:
        head = b"\x81\x7f" + size.to_bytes(8, "big")
    return head + payload
