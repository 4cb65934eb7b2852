"""The feed server's tuning and its counters, as frozen records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

from engine import FEED_MESSAGE_MAX, FeedHubStatistics

__all__ = ["ConnectionCounters", "FeedServerConfig", "FeedServerStatistics"]


@final
@dataclass(frozen=True, slots=True)
class FeedServerConfig:
    """Tuning of a feed server. The defaults suit a daemon on one machine.

    Attributes:
        path: the websocket path clients connect to.
        history_size: events kept per topic for resuming.
        client_queue_size: ordered events queued per client before it must resync.
        max_frame_events: events per frame at most.
        max_frame_bytes: frames stop growing past this many bytes.
        max_snapshot_bytes: a snapshot holds its topic's newest entries up to this size.
        max_snapshot_keys: a state topic's snapshot (``sessions``) holds at most this many keys.
        max_message_size: largest client message accepted (bigger ones close with 1009; at most
            :data:`~engine.FEED_MESSAGE_MAX` by default, the size client messages are decoded to).
        send_timeout: seconds one frame may take to send before the client is dropped as stalled.
        ping_interval: seconds between server pings.
        ping_timeout: seconds a pong may take before the client is dropped as dead.
        command_rate: client commands per second refilled into each connection's bucket.
        command_burst: bucket size.
        max_rate_strikes: commands refused in a row before the connection is closed (1008).
        max_connections_per_token: open connections one token (``jti``) may have.
        max_clients: open connections in all.
        max_subscriptions: topics one connection may subscribe to.
        engine_buffer: events buffered between the engine and the feed pump.
        handshake_timeout: seconds a client has to finish the websocket handshake.
        allowed_hosts: more host names the feed answers to (see :mod:`adapters.http._access`).
    """

    path: str = "/feed"
    history_size: int = 1000
    client_queue_size: int = 1000
    max_frame_events: int = 500
    max_frame_bytes: int = 256 * 1024
    max_snapshot_bytes: int = 1024 * 1024
    max_snapshot_keys: int = 500
    max_message_size: int = FEED_MESSAGE_MAX
    send_timeout: float = 10.0
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    command_rate: float = 20.0
    command_burst: int = 40
    max_rate_strikes: int = 20
    max_connections_per_token: int = 8
    max_clients: int = 1000
    max_subscriptions: int = 256
    engine_buffer: int = 100_000
    handshake_timeout: float = 10.0
    allowed_hosts: tuple[str, ...] = ()


@final
@dataclass(frozen=True, slots=True)
class FeedServerStatistics:
    """Counters of a feed server (see :meth:`FeedServer.statistics`).

    ``direct_frames`` counts the frames written straight to a client's socket by the flush;
    ``carried_frames`` those of them the socket took only in part (the client's sender task wrote
    the rest). The other frames went through the sender tasks.
    """

    clients: int
    accepted: int
    rejected: int
    closed_slow: int
    closed_dead: int
    closed_policy: int
    protocol_errors: int
    rate_limited: int
    engine_dropped: int
    handler_errors: int
    skipped_events: int
    hub: FeedHubStatistics
    direct_frames: int = 0
    carried_frames: int = 0


@final
@dataclass(slots=True)
class ConnectionCounters:
    """What the connections of one server counted, shared by all of them."""

    closed_slow: int = 0
    closed_dead: int = 0
    closed_policy: int = 0
    protocol_errors: int = 0
    rate_limited: int = 0
    direct_frames: int = 0
    carried_frames: int = 0
