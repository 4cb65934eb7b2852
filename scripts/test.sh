#!/usr/bin/env bash
# Install everything the project and its tests need on a fresh Debian machine, then run every check and test.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_bootstrap.sh
bootstrap_python '.[dev]'
bootstrap_test_tools
.venv/bin/ruff check .
.venv/bin/mypy
exec .venv/bin/pytest "$@"
