#!/usr/bin/env bash
# Install the runtime (not the dev tools) on a fresh Debian machine, then run the main job:
# `scribe serve` on the repository in the current directory (or `--repo PATH`), on the embedded
# PostgreSQL unless SCRIBE_DATABASE_URL is set. Arguments go to `scribe serve` (see
# `scripts/run.sh --help`).
set -euo pipefail
caller="$PWD"
project="$(cd "$(dirname "$0")/.." && pwd)"
cd "$project"
source scripts/_bootstrap.sh
bootstrap_python .
cd "$caller"
exec "$project/.venv/bin/scribe" serve "$@"
