"""The composition root: the only package of ``engine`` that imports ``adapters``. Configuration,
the stack (:func:`open_stack`), the daemon, the control handler, the command line and the demo."""

from ._config import AppConfig as AppConfig
from ._config import ConfigError as ConfigError
from ._config import load_config as load_config
from ._cli import main as main
