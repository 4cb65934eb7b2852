"""``python -m engine`` runs the ``scribe`` command line."""

import sys

from engine.app import main

sys.exit(main())
