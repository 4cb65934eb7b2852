# Shared install steps; sourced by scripts/run.sh and scripts/test.sh. Idempotent.

bootstrap_python() {
  # bootstrap_python [SPEC] : a .venv with the project installed editable as SPEC ('.' for the
  # runtime only, '.[dev]' with the test and lint tools; default '.').
  local spec="${1:-.}"
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
  fi
  # Quiet on success; the whole log on failure.
  local log=.venv/install.log
  if ! { .venv/bin/python -m pip install --disable-pip-version-check --upgrade pip \
         && .venv/bin/python -m pip install --disable-pip-version-check -e "$spec"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "installing the Python packages failed (log above, also in $log)" >&2
    return 1
  fi
}

apt_install() {
  # apt_install PKG... : install Debian packages that are not yet present.
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

bootstrap_test_tools() {
  apt_install git procps
  # Debian's own PostgreSQL server (an older major version, no pgvector): the database tests also run
  # on a throwaway cluster of it that the test fixtures start and stop (tests/debian_pg_support.py).
  apt_install postgresql
  # PgBouncer in front of that server (session mode works, transaction mode is refused at start:
  # tests/test_pgbouncer.py); its package's own service is not used.
  apt_install pgbouncer
  # Browser test of the dashboard (Debian's chromium; no browser download) and Node's `ws` client.
  apt_install chromium
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || apt_install nodejs npm
  (cd tests/js && npm install --no-audit --no-fund --silent >/dev/null)
}
