"""Scribe engine: a trio nursery tree of coding sessions with priority admission and isolation.

The engine is pure trio: it defines the protocols adapters implement and never imports a driver.
"""

from ._engine import Engine as Engine
from ._engine import EngineConfig as EngineConfig
from ._engine import EngineStatistics as EngineStatistics
from ._engine import default_home as default_home
from ._engine import open_engine as open_engine
from ._errors import AdmissionQueueFullError as AdmissionQueueFullError
from ._errors import EngineClosedError as EngineClosedError
from ._errors import IllegalTransitionError as IllegalTransitionError
from ._errors import InvalidArgumentError as InvalidArgumentError
from ._errors import ReentryError as ReentryError
from ._errors import RestartLimitError as RestartLimitError
from ._errors import ScribeError as ScribeError
from ._errors import SessionClosedError as SessionClosedError
from ._errors import SessionNotFoundError as SessionNotFoundError
from ._errors import TooManyTasksError as TooManyTasksError
from ._events import Event as Event
from ._events import EventBus as EventBus
from ._events import Subscription as Subscription
from ._limiter import LimiterStatistics as LimiterStatistics
from ._limiter import PriorityLimiter as PriorityLimiter
from ._priority import Priority as Priority
from ._session import Session as Session
from ._session import SessionInfo as SessionInfo
from ._session import SessionLimits as SessionLimits
from ._session import admit as admit
from ._session import current_session as current_session
from ._state import FINAL_STATES as FINAL_STATES
from ._state import TRANSITIONS as TRANSITIONS
from ._state import SessionKind as SessionKind
from ._state import SessionState as SessionState
from ._state import check_transition as check_transition
from ._supervisor import Restart as Restart
from ._supervisor import RestartPolicy as RestartPolicy
