"""Every entry point turns a file path in MILVUS_URI into our message, not a pymilvus
traceback: pymilvus validates MILVUS_URI when it is imported, so each entry point must
validate the settings before anything imports it. Run in fresh processes, since this
test process has imported pymilvus already."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "command",
    [
        ["-m", "ingest", "data/sample"],
        ["-m", "chains", "What is MMR?"],
        ["-c", "import app"],
    ],
    ids=["ingest", "ask", "app"],
)
def test_a_file_path_in_milvus_uri_gets_a_clear_error(command: list[str], tmp_path: Path) -> None:
    env = {**os.environ, "MILVUS_URI": str(tmp_path / "milvus.db"), "EMBEDDINGS": "local"}
    done = subprocess.run(
        [sys.executable, *command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "MILVUS_URI must be a Milvus server address" in done.stderr
    assert f"MILVUS_LITE_PATH={tmp_path / 'milvus.db'}" in done.stderr
    assert "Traceback" not in done.stderr
