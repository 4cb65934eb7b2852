"""``python -m adapters.mcp PATH``: write the MCP server's document (docs/mcp.md)."""

from __future__ import annotations

import sys
from pathlib import Path

from ._doc import mcp_doc

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m adapters.mcp docs/mcp.md")
    Path(sys.argv[1]).write_text(mcp_doc())
