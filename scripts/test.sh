#!/usr/bin/env bash
# README command 2: every test. Native unit tests first, then the real Worker under wrangler dev.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
echo "== native unit tests (cargo test)"
cargo test --quiet
echo "== building the Worker"
bash scripts/build.sh
echo "== integration tests through wrangler dev"
node tests/run.mjs "$@"
