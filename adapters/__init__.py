"""Adapters that implement the engine's protocols over git, the filesystem, PostgreSQL and websockets."""

from ._feed_client import FeedClient as FeedClient
from ._feed_client import FeedClientError as FeedClientError
from ._feed_client import FeedConnectionError as FeedConnectionError
from ._feed_client import FeedMessage as FeedMessage
from ._feed_client import FeedReply as FeedReply
from ._feed_client import FeedSnapshot as FeedSnapshot
from ._feed_client import FeedUpdate as FeedUpdate
from ._feed_client import open_feed_client as open_feed_client
from ._feed_limits import ConnectionLimitError as ConnectionLimitError
from ._feed_protocol import FeedProtocolError as FeedProtocolError
from ._feed_protocol import client_message_schema as client_message_schema
from ._feed_server import FeedServer as FeedServer
from ._feed_server import FeedServerConfig as FeedServerConfig
from ._feed_server import FeedServerStatistics as FeedServerStatistics
from ._feed_server import open_feed_server as open_feed_server
from ._feed_token import FeedClaims as FeedClaims
from ._feed_token import FeedScopes as FeedScopes
from ._feed_token import FeedTokenError as FeedTokenError
from ._feed_token import FeedTokenExpiredError as FeedTokenExpiredError
from ._feed_token import FeedTokenInvalidError as FeedTokenInvalidError
from ._feed_token import make_token as make_token
from ._feed_token import verify_token as verify_token
from ._git import GitRepository as GitRepository
from ._git import open_repository as open_repository
