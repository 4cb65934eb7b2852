"""The runtime core: errors, priorities, the state table, the limiter, sessions, the engine, supervision,
events, single-flight, health, the host bridges, user text made visible (``_literal``) and text
made safe to keep (``_privacy``, ``_secrets``, ``_privacy_log``). Imports none
of the applications and no port.

A session's lifecycle is in ``_session``; what describes one (limits, snapshot, argument checks) in
``_session_info``; the current session and admission under it in ``_admission``; the engine in ``_engine``
and its configuration in ``_config``; the sync host in ``_portal`` and the asyncio host in ``_guest``.
"""
