#!/usr/bin/env bash
# `make bench`: builds the release Worker and the floor Worker the same way, then measures Clavex
# (wrangler dev --local), the floor (same workerd) and oidc-provider (Node) in one run with the same
# load generator (bench/run.mjs). Writes bench/results/latest.md (+ .json and a dated copy).
# Bounded: each scenario stops after BENCH_SECONDS (default 5) or its request cap; the whole run
# after BENCH_MAX_TOTAL_SECONDS (default 900). Only 127.0.0.1 is targeted.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
echo "== building Clavex (release)"
bash scripts/build.sh
echo "== building the floor Worker (bench/floor, same toolchain)"
bash bench/floor/build.sh
echo "== measuring"
node bench/run.mjs "$@"
