"""``python -m adapters.control PATH``: write the control protocol's document (docs/control.md)."""

from __future__ import annotations

import sys
from pathlib import Path

from ._schema import control_doc

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m adapters.control docs/control.md")
    Path(sys.argv[1]).write_text(control_doc())
