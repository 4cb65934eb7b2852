"""``python -m engine`` runs the ``scribe`` command line."""

import sys

from engine.cli import main

sys.exit(main())
