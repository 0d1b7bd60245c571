#!/usr/bin/env bash
# Builds the floor Worker exactly as scripts/build.sh builds Clavex: worker-build --release with
# the same locally installed wasm-bindgen, esbuild and wasm-opt. Skips when nothing changed.
set -euo pipefail
cd "$(dirname "$0")"
ROOT="$(cd ../.. && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"
if [ -f build/index.js ] && [ -z "${CLAVEX_FORCE_BUILD:-}" ] &&
   [ -z "$(find src Cargo.toml Cargo.lock -newer build/index.js -print -quit 2>/dev/null)" ]; then
  echo "bench/floor/build/ is up to date"
  exit 0
fi
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$HOME/.cargo/bin/wasm-bindgen}"
export ESBUILD_BIN="${ESBUILD_BIN:-$ROOT/node_modules/.bin/esbuild}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$ROOT/node_modules/.bin/wasm-opt}"
worker-build --release "$@"
touch build/index.js
