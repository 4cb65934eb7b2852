#!/usr/bin/env bash
# Install everything on a fresh Debian machine, then run the main job (default: `scribe demo`).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_bootstrap.sh
bootstrap_python
if [ "$#" -eq 0 ]; then
  set -- demo
fi
exec .venv/bin/scribe "$@"
