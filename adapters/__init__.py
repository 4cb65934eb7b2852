"""Adapters that implement the engine's protocols over git, the filesystem, PostgreSQL and websockets."""

import importlib
import typing

from .control._operations import CONTROL_OPERATIONS as CONTROL_OPERATIONS
from .control._operations import ControlArgs as ControlArgs
from .control._operations import PingArgs as PingArgs
from .control._operations import StatusArgs as StatusArgs
from .control._operations import DashboardUrlArgs as DashboardUrlArgs
from .control._operations import StartArgs as StartArgs
from .control._operations import StopArgs as StopArgs
from .control._operations import AdoptArgs as AdoptArgs
from .control._operations import ListArgs as ListArgs
from .control._operations import AppendArgs as AppendArgs
from .control._operations import TagArgs as TagArgs
from .control._operations import UntagArgs as UntagArgs
from .control._operations import InfoArgs as InfoArgs
from .control._operations import ContextArgs as ContextArgs
from .control._operations import WorklogArgs as WorklogArgs
from .control._operations import SummaryArgs as SummaryArgs
from .control._operations import CleanupArgs as CleanupArgs
from .control._operations import ValidateArgs as ValidateArgs
from .control._operations import WatchArgs as WatchArgs
from .control._operations import McpTokenArgs as McpTokenArgs
from .control._operations import MonitoringArgs as MonitoringArgs
from .control._memory_operations import MEMORY_OPERATIONS as MEMORY_OPERATIONS
from .control._import_operations import IMPORT_OPERATIONS as IMPORT_OPERATIONS
from .control._import_operations import ImportTranscriptArgs as ImportTranscriptArgs
from .control._import_operations import TRANSCRIPT_BUDGET_MAX as TRANSCRIPT_BUDGET_MAX
from .control._memory_operations import RememberArgs as RememberArgs
from .control._memory_operations import RecallArgs as RecallArgs
from .control._memory_operations import DecideArgs as DecideArgs
from .control._memory_operations import RehydrateArgs as RehydrateArgs
from .control._memory_operations import RehydrateRole as RehydrateRole
from .control._memory_operations import CacheLookupArgs as CacheLookupArgs
from .control._memory_operations import CacheStoreArgs as CacheStoreArgs
from .control._hook_operations import HOOK_OPERATIONS as HOOK_OPERATIONS
from .control._hook_operations import HookAgent as HookAgent
from .control._hook_operations import HookArgs as HookArgs
from .control._protocol import MAX_CONTROL_LINE as MAX_CONTROL_LINE
from .control._protocol import ControlRequest as ControlRequest
from .control._protocol import decode_control_response as decode_control_response
from .control._protocol import encode_control_error as encode_control_error
from .control._protocol import encode_control_request as encode_control_request
from .control._protocol import encode_control_result as encode_control_result
from .control._protocol import parse_control_request as parse_control_request
from .control._protocol import ControlProtocolError as ControlProtocolError
from .control._protocol import DaemonError as DaemonError
from .control._protocol import DaemonNotRunningError as DaemonNotRunningError
from .control._client import ControlClient as ControlClient
from .control._client import AsyncControlClient as AsyncControlClient
from .control._client import ControlWatch as ControlWatch
from .control._client import open_control_client as open_control_client
from .control._stream import ControlStream as ControlStream
from .control._socket import ControlServer as ControlServer
from .control._socket import DaemonAlreadyRunningError as DaemonAlreadyRunningError
from .control._socket import ControlLimitError as ControlLimitError
from .control._socket import DEFAULT_CONTROL_CONNECTIONS as DEFAULT_CONTROL_CONNECTIONS
from .control._socket import DEFAULT_CONTROL_IDLE_TIMEOUT as DEFAULT_CONTROL_IDLE_TIMEOUT
from .control._socket import open_control_server as open_control_server
from .control._schema import control_doc as control_doc
from .control._schema import control_schema as control_schema
from .fs._watch_tracker import WatcherTracker as WatcherTracker
from .fs._watch_tracker import WatchTotals as WatchTotals
from .http._webhook import Webhook as Webhook
from .http._webhook import WebhookStatistics as WebhookStatistics
from .http._dashboard import Dashboard as Dashboard
from .http._control_api import ControlCall as ControlCall
from .http._dashboard import EngineCollector as EngineCollector
from .http._dashboard import open_dashboard as open_dashboard
from .http._login import LOGIN_TOKEN_TTL as LOGIN_TOKEN_TTL
from .postgres._embedded import EmbeddedServer as EmbeddedServer
from .postgres._shared_server import open_embedded_server as open_embedded_server
from .postgres._server_supervisor import supervise_embedded_server as supervise_embedded_server
from .embedding._hashing import HashingEmbedder as HashingEmbedder
from .embedding._wordllama import WordLlamaEmbedder as WordLlamaEmbedder
from .embedding._openai import OpenAIEmbedder as OpenAIEmbedder
from .embedding._sentence_transformers import (
    SentenceTransformersEmbedder as SentenceTransformersEmbedder,
)
from .embedding._configured import EMBEDDER_NAMES as EMBEDDER_NAMES
from .embedding._configured import create_embedder as create_embedder
from .embedding._configured import describe_embedder as describe_embedder
from .feed._client import FeedClient as FeedClient
from .feed._errors import FeedClientError as FeedClientError
from .feed._errors import FeedConnectionError as FeedConnectionError
from .feed._client import FeedMessage as FeedMessage
from .feed._client import FeedReply as FeedReply
from .feed._client import FeedSnapshot as FeedSnapshot
from .feed._client import FeedUpdate as FeedUpdate
from .feed._client import open_feed_client as open_feed_client
from .feed._limits import ConnectionLimitError as ConnectionLimitError
from .feed._protocol import FeedProtocolError as FeedProtocolError
from .feed._protocol import client_message_schema as client_message_schema
from .feed._server import FeedServer as FeedServer
from .feed._server_config import FeedServerConfig as FeedServerConfig
from .feed._server_config import FeedServerStatistics as FeedServerStatistics
from .feed._server import open_feed_server as open_feed_server
from .feed._tokens import FeedClaims as FeedClaims
from .feed._tokens import FeedScopes as FeedScopes
from .feed._errors import FeedTokenError as FeedTokenError
from .feed._errors import FeedTokenExpiredError as FeedTokenExpiredError
from .feed._errors import FeedTokenInvalidError as FeedTokenInvalidError
from .feed._tokens import make_token as make_token
from .feed._tokens import verify_token as verify_token
from .fs._journal import FileJournal as FileJournal
from .fs._scoped import ScopedFileSystem as ScopedFileSystem
from .postgres._generation_store import PostgresGenerationStore as PostgresGenerationStore
from .postgres._generation_store import create_generation_cache as create_generation_cache
from .postgres._metric_store import PostgresMetricStore as PostgresMetricStore
from .git._repository import GitRepository as GitRepository
from .git._discovery import open_repository as open_repository
from .postgres._memory_store import PostgresMemoryStore as PostgresMemoryStore
from .postgres._memory_store import create_memory_store as create_memory_store
from .postgres._table_statistics import TableFacts as TableFacts
from .postgres._table_statistics import TableStatistics as TableStatistics
from .postgres._embedding_backfill import BackfillStatistics as BackfillStatistics
from .postgres._embedding_backfill import EmbeddingBackfill as EmbeddingBackfill
from .http._embedding_metrics import EmbeddingCollector as EmbeddingCollector
from .postgres._memory_sources import SummarySource as SummarySource
from .postgres._memory_sources import WorklogSource as WorklogSource
from .postgres._memory_sources import default_memory_sources as default_memory_sources
from .external_tool._subprocess_source import SubprocessSource as SubprocessSource
from .external_tool._subprocess_source import SubprocessSourceError as SubprocessSourceError
from .postgres._ping import DatabasePing as DatabasePing
from .postgres._database import Database as Database
from .postgres._database_statistics import DatabaseStatistics as DatabaseStatistics
from .postgres._open_database import open_database as open_database
from .postgres._errors import DatabaseClosedError as DatabaseClosedError
from .postgres._errors import DatabaseError as DatabaseError
from .postgres._errors import DatabaseUnavailableError as DatabaseUnavailableError
from .postgres._errors import EmbeddedServerError as EmbeddedServerError
from .postgres._errors import IntegrityError as IntegrityError
from .postgres._errors import MigrationError as MigrationError
from .postgres._errors import QueryCancelledError as QueryCancelledError
from .postgres._errors import QueryError as QueryError
from .postgres._errors import SchemaTooNewError as SchemaTooNewError
from .postgres._errors import TransactionConflictError as TransactionConflictError
from .postgres._migrations import MIGRATIONS_DIR as MIGRATIONS_DIR
from .postgres._migrations import Migration as Migration
from .postgres._migrations import discover_migrations as discover_migrations
from .postgres._registry import SessionRegistry as SessionRegistry
from .postgres._registry import open_session_registry as open_session_registry
from .postgres._change_listener import open_change_listener as open_change_listener
from .postgres._change_listener import parse_change_notice as parse_change_notice
from .postgres._change_listener import (
    ChangeNoticesUnavailableError as ChangeNoticesUnavailableError,
)
from .fs._watcher import InotifyWatcher as InotifyWatcher
from .fs._watcher_statistics import WatcherStatistics as WatcherStatistics
from .fs._open_watcher import open_watcher as open_watcher
from .postgres._worklog_store import PostgresWorklogStore as PostgresWorklogStore
from .agents._claude_settings import CLAUDE_CODE_HOOKS as CLAUDE_CODE_HOOKS
from .agents._tool_calls import claude_tool_effects as claude_tool_effects
from .agents._claude_settings import HOOK_TIMEOUT_SECONDS as HOOK_TIMEOUT_SECONDS
from .agents._claude_settings import MAX_HOOK_COMMAND as MAX_HOOK_COMMAND
from .agents._claude_settings import ClaudeSettingsError as ClaudeSettingsError
from .agents._claude_settings import HookSpec as HookSpec
from .agents._claude_settings import SettingsFormatError as SettingsFormatError
from .agents._claude_settings import SettingsScope as SettingsScope
from .agents._claude_settings import hook_command as hook_command
from .agents._claude_settings import install_hooks as install_hooks
from .agents._claude_settings import is_scribe_hook as is_scribe_hook
from .agents._claude_settings import settings_path as settings_path
from .agents._claude_settings import uninstall_hooks as uninstall_hooks
from .agents._settings_file import MAX_SETTINGS_FILE as MAX_SETTINGS_FILE
from .agents._settings_file import SettingsChange as SettingsChange
from .agents._settings_file import SettingsChangedError as SettingsChangedError
from .agents._settings_file import SettingsPathError as SettingsPathError
from .agents._settings_file import apply_settings_change as apply_settings_change
from .agents._claude_transcript import read_claude_transcript as read_claude_transcript
from .agents._codex_rollout import read_codex_rollout as read_codex_rollout
from .agents._transcript_records import TranscriptBatch as TranscriptBatch
from .agents._transcript_records import TranscriptRecord as TranscriptRecord
from .agents._transcript_records import RecordKind as RecordKind
from .agents._transcript_records import TEXT_LIMIT as TEXT_LIMIT
from .agents._transcript_records import TOOL_INPUT_LIMIT as TOOL_INPUT_LIMIT
from .agents._jsonl_lines import MAX_LINE_BYTES as MAX_LINE_BYTES
from .agents._transcript_files import find_transcripts as find_transcripts
from .agents._transcript_files import TranscriptSearchLimitError as TranscriptSearchLimitError
from .agents._transcript_files import MAX_TRANSCRIPT_FILES as MAX_TRANSCRIPT_FILES
from .mcp._backend import McpBackend as McpBackend
from .mcp._backend import McpWatch as McpWatch
from .mcp._tools import MCP_TOOLS as MCP_TOOLS
from .mcp._tools import McpTool as McpTool
from .mcp._tokens import McpClaims as McpClaims
from .mcp._tokens import McpTokenError as McpTokenError
from .mcp._tokens import make_mcp_token as make_mcp_token
from .mcp._tokens import verify_mcp_token as verify_mcp_token

# The MCP server's parts import the mcp SDK (about 0.4 s): they are loaded on first use, so the
# command-line commands that never serve MCP start without it.
if typing.TYPE_CHECKING:
    from .mcp._app import McpApp as McpApp
    from .mcp._app import open_mcp_app as open_mcp_app
    from .mcp._stdio import serve_mcp_stdio as serve_mcp_stdio
    from .mcp._http import McpHttp as McpHttp
    from .mcp._http import open_mcp_http as open_mcp_http
    from .mcp._doc import mcp_doc as mcp_doc

_ON_FIRST_USE: dict[str, str] = {
    "McpApp": ".mcp._app",
    "open_mcp_app": ".mcp._app",
    "serve_mcp_stdio": ".mcp._stdio",
    "McpHttp": ".mcp._http",
    "open_mcp_http": ".mcp._http",
    "mcp_doc": ".mcp._doc",
}


def __getattr__(name: str) -> object:
    module = _ON_FIRST_USE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
