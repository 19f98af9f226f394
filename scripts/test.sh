#!/usr/bin/env bash
# The whole test suite: formatting, lints, every test of the workspace, the OpenAPI document,
# and the browser test in Chromium.
#
# PostgreSQL: the server's store tests also run against PostgreSQL when
# BAYLENS_TEST_POSTGRES_URL is set (.ci/run sets it); they then fail if it is unreachable.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== OpenAPI document"
.tools/venv/bin/openapi-spec-validator server/openapi.json
if [ -n "${BAYLENS_TEST_POSTGRES_URL:-}" ]; then
  echo "== PostgreSQL: $BAYLENS_TEST_POSTGRES_URL"
  # Each test makes its own schema; drop those of earlier runs.
  if command -v psql >/dev/null; then
    export PGOPTIONS="-c client_min_messages=warning"
    psql -q "$BAYLENS_TEST_POSTGRES_URL" -At -c "SELECT string_agg(format('DROP SCHEMA %I CASCADE;', nspname), ' ') FROM pg_namespace WHERE nspname LIKE 't\_%'" \
      | { read -r drops || true; [ -z "$drops" ] || psql -q "$BAYLENS_TEST_POSTGRES_URL" -c "$drops" >/dev/null; }
  fi
else
  echo "== PostgreSQL: BAYLENS_TEST_POSTGRES_URL not set, SQLite only"
fi
echo "== cargo test --workspace"
# The crash tests run the real binaries; build them first rather than from inside a test.
cargo build --workspace --bins --quiet
export BAYLENS_BROWSER_TESTS=1
cargo test --workspace --quiet
echo "== screenshots of the browser test: target/screenshots/"
