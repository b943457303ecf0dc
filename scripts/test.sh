#!/usr/bin/env bash
# Set up (with the dev extras and the browser for UI tests) and run every check and test.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh dev
if ! command -v chromium >/dev/null 2>&1; then
  echo "==> installing Debian's chromium for the browser tests"
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

echo "==> ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "==> mypy"
.venv/bin/mypy .
echo "==> pytest"
# `chainlit run` treats CI=true as --ci (and then fakes OPENAI_API_KEY): the tests that
# start the app clear it themselves; nothing else here depends on it.
.venv/bin/python -m pytest "$@"
