#!/usr/bin/env bash
# Create .venv, install the project, and export the local embedding model to ONNX once
# (idempotent: reinstalls only when pyproject changes, exports only when the model is missing).
# Usage: scripts/setup.sh [dev]
set -euo pipefail
cd "$(dirname "$0")/.."

extras="${1:-}"
python="${PYTHON:-python3}"
venv=".venv"
stamp="$venv/.installed-${extras:-base}"
wanted="$(sha256sum pyproject.toml | cut -d' ' -f1)"

# PyTorch is needed only to export the model. It must be the CPU build from this machine's
# local wheel, installed before anything that depends on it, or pip pulls a multi-GB CUDA build.
install_torch() {
  "$1/bin/pip" install --quiet "torch==2.13.0"
}

if [ ! -x "$venv/bin/python" ]; then
  echo "==> creating $venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "==> installing the project${extras:+ [$extras]}"
  # The extras (dev, export) include the export's PyTorch; a plain install has none.
  if [ -n "$extras" ]; then install_torch "$venv"; fi
  "$venv/bin/pip" install --quiet -e ".${extras:+[$extras]}"
  echo "$wanted" > "$stamp"
fi

# The export is written into its folder in one rename: the folder exists only when complete.
model_dir="$("$venv/bin/python" -c 'from core.onnx_model import default_model_files as f
print(f().directory)')"
if [ ! -d "$model_dir" ]; then
  echo "==> exporting all-MiniLM-L6-v2 to ONNX (once, from the packaged weights)"
  if [ -n "$extras" ]; then
    "$venv/bin/python" -m core.onnx_export "$model_dir"
  else
    # Export in a throwaway environment with the `export` extra, so that the app's own
    # environment never holds PyTorch.
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    "$python" -m venv "$tmp"
    install_torch "$tmp"
    "$python" -c 'import tomllib
print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["export"]))' \
      > "$tmp/export.txt"
    "$tmp/bin/pip" install --quiet -r "$tmp/export.txt"
    "$tmp/bin/python" -m core.onnx_export "$model_dir"
  fi
fi
