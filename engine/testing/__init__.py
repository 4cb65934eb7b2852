"""In-memory implementations of the engine's ports, for tests and for hosts that test their own code.

Each one implements its protocol exactly and raises the engine's typed errors, and each is held to
the same contract tests (``tests/contracts/``) as the real adapter, so engine logic runs without
PostgreSQL, git or inotify. Everything here is pure trio and touches no disk.

========================================  =============================================from ._fuzz import Schedule as Schedule
from ._fuzz import schedules as schedules
