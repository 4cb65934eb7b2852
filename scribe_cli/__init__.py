"""The ``scribe`` command's front door, standard library only: the hook command (``scribe hook
claude-code``, run by Claude Code on every prompt and tool call) and where the home, the
configuration file and the control socket are. Every other command is ``engine.app``'s, imported
lazily by :func:`main`."""

from ._home import SOCKET_NAME as SOCKET_NAME
from ._home import HomeConfigError as HomeConfigError
from ._home import config_path as config_path
from ._home import default_home as default_home
from ._home import resolve_home as resolve_home
from ._home import socket_path as socket_path
from ._hook_log import MAX_HOOK_LOG as MAX_HOOK_LOG
from ._hook_log import hook_log_path as hook_log_path
from ._hook import EVENT_DEADLINE as EVENT_DEADLINE
from ._hook import HOOK_AGENTS as HOOK_AGENTS
from ._hook import MAX_HOOK_INPUT as MAX_HOOK_INPUT
from ._hook import MAX_REQUEST_LINE as MAX_REQUEST_LINE
from ._hook import SESSION_START_DEADLINE as SESSION_START_DEADLINE
from ._hook import hook_request_line as hook_request_line
from ._hook import run_hook as run_hook
from ._main import main as main
