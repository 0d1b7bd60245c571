#!/usr/bin/env bash
# Builds the Worker (build/index.js + wasm) with the tools scripts/setup.sh installed.
# worker-build looks for *_BIN variables before it tries to download anything (toolchain.md).
# Skips the build when nothing it reads changed since the last one, so a warm run costs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
if [ -f build/index.js ] && [ -z "${CLAVEX_FORCE_BUILD:-}" ] &&
   [ -z "$(find src templates Cargo.toml Cargo.lock -newer build/index.js -print -quit 2>/dev/null)" ]; then
  echo "build/ is up to date"
  exit 0
fi
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$HOME/.cargo/bin/wasm-bindgen}"
export ESBUILD_BIN="${ESBUILD_BIN:-$PWD/node_modules/.bin/esbuild}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$PWD/node_modules/.bin/wasm-opt}"
worker-build --release "$@"
touch build/index.js
