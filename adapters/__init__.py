"""Adapters that implement the engine's protocols over git, the filesystem, PostgreSQL and websockets."""

from ._control import ControlClient as ControlClient
from ._control import ControlServer as ControlServer
from ._control import DaemonAlreadyRunningError as DaemonAlreadyRunningError
from ._control import open_control_server as open_control_server
from ._dashboard import Dashboard as Dashboard
from ._dashboard import EngineCollector as EngineCollector
from ._dashboard import open_dashboard as open_dashboard
from ._embedded import EmbeddedServer as EmbeddedServer
from ._embedded import open_embedded_server as open_embedded_server
from ._embedding import HashingEmbedder as HashingEmbedder
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
from ._fs import ScopedFileSystem as ScopedFileSystem
from ._gencache import PostgresGenerationStore as PostgresGenerationStore
from ._gencache import create_generation_cache as create_generation_cache
from ._git import GitRepository as GitRepository
from ._git import open_repository as open_repository
from ._memory import PostgresMemoryStore as PostgresMemoryStore
from ._memory import create_memory_store as create_memory_store
from ._memory_sources import SubprocessSource as SubprocessSource
from ._memory_sources import SubprocessSourceError as SubprocessSourceError
from ._memory_sources import SummarySource as SummarySource
from ._memory_sources import WorklogSource as WorklogSource
from ._memory_sources import default_memory_sources as default_memory_sources
from ._pg import Database as Database
from ._pg import DatabaseStatistics as DatabaseStatistics
from ._pg import open_database as open_database
from ._pg_errors import DatabaseClosedError as DatabaseClosedError
from ._pg_errors import DatabaseError as DatabaseError
from ._pg_errors import DatabaseUnavailableError as DatabaseUnavailableError
from ._pg_errors import EmbeddedServerError as EmbeddedServerError
from ._pg_errors import IntegrityError as IntegrityError
from ._pg_errors import MigrationError as MigrationError
from ._pg_errors import QueryCancelledError as QueryCancelledError
from ._pg_errors import QueryError as QueryError
from ._pg_errors import SchemaTooNewError as SchemaTooNewError
from ._pg_errors import TransactionConflictError as TransactionConflictError
from ._pg_migrations import MIGRATIONS_DIR as MIGRATIONS_DIR
from ._pg_migrations import Migration as Migration
from ._pg_migrations import discover_migrations as discover_migrations
from ._registry import SessionRegistry as SessionRegistry
from ._registry import open_session_registry as open_session_registry
from ._watcher import InotifyWatcher as InotifyWatcher
from ._watcher import WatcherStatistics as WatcherStatistics
from ._watcher import open_watcher as open_watcher
from ._worklog_store import PostgresWorklogStore as PostgresWorklogStore


def __getattr__(name: str) -> object:
    # The DSPy bridge needs the optional ``dspy`` extra: imported on first use only.
    if name in ("RehydrateRetriever", "DSPyBridgeError"):
        from . import _dspy

        return getattr(_dspy, name)
    raise AttributeError(f"module 'adapters' has no attribute {name!r}")
