#!/usr/bin/env bash
# Create .venv and install the project (idempotent: reinstalls only when pyproject changes).
# Usage: scripts/setup.sh [dev]
set -euo pipefail
cd "$(dirname "$0")/.."

extras="${1:-}"
python="${PYTHON:-python3}"
venv=".venv"
stamp="$venv/.installed-${extras:-base}"
wanted="$(sha256sum pyproject.toml | cut -d' ' -f1)"

if [ ! -x "$venv/bin/python" ]; then
  echo "==> creating $venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  # The CPU build of torch comes from this machine's local wheel; it must be installed
  # before anything that depends on torch, or pip pulls a multi-GB CUDA build.
  echo "==> installing torch (CPU) and the project${extras:+ [$extras]}"
  "$venv/bin/pip" install --quiet "torch==2.13.0"
  "$venv/bin/pip" install --quiet -e ".${extras:+[$extras]}"
  echo "$wanted" > "$stamp"
fi
