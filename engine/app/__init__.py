"""The composition root: the only package of ``engine`` that imports ``adapters``. The daemon, the
control handler, the command line and the demo."""

from ._cli import main as main
