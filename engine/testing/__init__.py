"""In-memory implementations of the engine's ports, for tests and for hosts that test their own code.

Each one implements its protocol exactly and raises the engine's typed errors, and each is held to
the same contract tests (``tests/contracts/``) as the real adapter, so engine logic can run without
PostgreSQL, git or inotify. Everything here is pure trio and does no I/O.
"""

from ._database import InMemoryDatabase as InMemoryDatabase
from ._session_store import InMemorySessionStore as InMemorySessionStore
from ._session_store import open_in_memory_session_store as open_in_memory_session_store
from ._worklog_store import InMemoryWorklogStore as InMemoryWorklogStore
from ._fs import InMemoryFileSystem as InMemoryFileSystem
from ._git import FakeGit as FakeGit
from ._watcher import FakeWatcher as FakeWatcher
from ._watcher import FakeWatchers as FakeWatchers
from ._generation_store import InMemoryGenerationStore as InMemoryGenerationStore
from ._generation_store import in_memory_generation_cache as in_memory_generation_cache
from ._memory_store import InMemoryMemoryStore as InMemoryMemoryStore
