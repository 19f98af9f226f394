#!/usr/bin/env bash
# Dependency policy with cargo-deny (deny.toml): licences, banned crates and sources (needs
# only crates.io).
#   scripts/deny.sh               # licenses bans sources
#   scripts/deny.sh advisories    # RustSec advisories; needs GitHub, unreachable on build machines
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v cargo-deny >/dev/null || cargo install cargo-deny --locked --quiet
if [ "${1:-}" = advisories ]; then
  exec cargo deny check advisories
fi
exec cargo deny check licenses bans sources
