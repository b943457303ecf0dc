#!/usr/bin/env bash
# Set up, seed the knowledge base with the sample corpus when it is empty, start the app.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
export CHAINLIT_HOST="${CHAINLIT_HOST:-127.0.0.1}"
export CHAINLIT_PORT="${CHAINLIT_PORT:-8000}"
# gRPC's C core logs keepalive chatter ("too_many_pings") to stderr; it reads this only
# before it loads, which Chainlit does before the app's own logging set-up can.
export GRPC_VERBOSITY="${GRPC_VERBOSITY:-NONE}"

echo "==> ingesting the sample corpus (skipped when the collection already has chunks)"
.venv/bin/python -m ingest data/sample --if-empty

echo "==> preparing users and chat history (migrations; a first admin on a new install)"
.venv/bin/python -m accounts init
# Chainlit needs the sign-in secret before the app starts; generated once into data/.
CHAINLIT_AUTH_SECRET="${CHAINLIT_AUTH_SECRET:-$(.venv/bin/python -m accounts secret)}"
export CHAINLIT_AUTH_SECRET

echo "==> starting the chat on http://${CHAINLIT_HOST}:${CHAINLIT_PORT}"
exec .venv/bin/chainlit run app.py --headless --host "$CHAINLIT_HOST" --port "$CHAINLIT_PORT"
