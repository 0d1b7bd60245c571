#!/usr/bin/env bash
# README command 1: start Clavex locally under `wrangler dev` with a demo organization `acme`, the
# guide's client `rocketchat` and a demo user, created once through the admin API.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
PORT="${PORT:-8787}"
HOST="${HOST:-127.0.0.1}"
npx wrangler d1 migrations apply DB --local >/dev/null
npx wrangler dev --local --ip "$HOST" --port "$PORT" --show-interactive-dev-session=false &
WRANGLER_PID=$!
trap 'kill $WRANGLER_PID 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 1 180); do
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break
  kill -0 $WRANGLER_PID 2>/dev/null || { echo "wrangler dev exited" >&2; exit 1; }
  sleep 1
done
node scripts/seed-demo.mjs "http://127.0.0.1:$PORT"
wait $WRANGLER_PID
