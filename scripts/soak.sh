#!/usr/bin/env bash
# `make soak`: builds the release Worker like `make bench`, then bench/soak.mjs runs one Clavex under
# `wrangler dev --local` with a steady mixed load (sign-ins, token, refresh, userinfo, admin writes)
# for SOAK_SECONDS (default 120, at most 300) at SOAK_CONCURRENCY (default 8), 127.0.0.1 only.
# Writes bench/results/soak-latest.md (+ .json); exits non-zero on any 5xx, timeout or wrong answer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
echo "== building Clavex (release)"
bash scripts/build.sh
echo "== soaking"
node bench/soak.mjs "$@"
