#!/usr/bin/env bash
# Installs, on a fresh machine, every tool Clavex needs to build, run and test — and skips what is
# already there at the right version, so a warm machine gets through in seconds.
# Only the package registries are reachable here: no GitHub downloads (see toolchain.md).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

WORKER_BUILD_VERSION="0.8.7"
# wasm-bindgen CLI must match the wasm-bindgen crate in Cargo.lock exactly.
WASM_BINDGEN_VERSION="$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/[^0-9.]/, ""); print; exit}' Cargo.lock)"

step() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup first" >&2; exit 1; }
command -v node >/dev/null || { echo "node not found: install Node.js 20+ first" >&2; exit 1; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  step "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt

# `worker-build --version` prints the bare version ("0.8.7") while wasm-bindgen prints
# "wasm-bindgen 0.2.N": take the last version-shaped word, whatever precedes it.
installed_version() { "$1" --version 2>/dev/null | grep -Eo '[0-9]+\.[0-9]+\.[0-9]+' | tail -n 1; }

if [ "$(installed_version worker-build)" != "$WORKER_BUILD_VERSION" ]; then
  step "installing worker-build $WORKER_BUILD_VERSION (takes a few minutes once)"
  cargo install worker-build --version "$WORKER_BUILD_VERSION" --locked
fi

if [ "$(installed_version wasm-bindgen)" != "$WASM_BINDGEN_VERSION" ]; then
  step "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (takes a few minutes once)"
  # Not --locked: the locked webpki-roots version is missing from the registry mirror (toolchain.md).
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi

if [ ! -f node_modules/.package-lock.json ] || ! cmp -s package-lock.json node_modules/.clavex-lock; then
  step "installing npm packages (wrangler, esbuild, binaryen, test and bench clients)"
  npm ci --no-audit --no-fund
  cp package-lock.json node_modules/.clavex-lock
fi

# tests/browser.test.mjs drives the login pages in a real headless browser. puppeteer-core
# downloads no browser (nothing but the registries is reachable): Debian's chromium is used, with
# one font so pages render text in screenshots.
if [ ! -x /usr/bin/chromium ] && ! command -v chromium >/dev/null; then
  step "installing chromium for the browser tests (about a minute once)"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium fonts-dejavu-core
fi

if [ ! -f .dev.vars ]; then
  step "creating .dev.vars with fresh local secrets"
  rand() { node -e 'console.log(require("crypto").randomBytes(32).toString("base64url"))'; }
  {
    echo "ADMIN_TOKEN=$(rand)"
    echo "KEY_ENCRYPTION_SECRET=$(rand)"
  } > .dev.vars
fi
step "tools ready"
