"""The composition root: the only package of ``engine`` that imports ``adapters``. Configuration
(:func:`load_config`), the stack (:func:`open_stack`), the daemon, the control handler, the command
line and the demo."""

from ._config import AppConfig as AppConfig
from ._config_setting import ConfigError as ConfigError
from ._config import load_config as load_config
from ._home import UnsafeHomeError as UnsafeHomeError
from ._stack import Stack as Stack
from ._stack import open_stack as open_stack
from ._cli import main as main
