"""Every entry point turns a file path in MILVUS_URI into our message, not a pymilvus
traceback: pymilvus validates MILVUS_URI when it is imported, so each entry point must
validate the settings before anything imports it. Run in fresh processes, since this
test process has imported pymilvus already.

The app reads its settings in Chainlit's start-up hook, not at import: importing any of
our modules only defines things."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "command",
    [
        ["-m", "ingest", "data/sample"],
        ["-m", "chains", "What is MMR?"],
        ["-m", "chainlit", "run", "app.py", "--headless", "--port", str(free_port())],
    ],
    ids=["ingest", "ask", "app"],
)
def test_a_file_path_in_milvus_uri_gets_a_clear_error(command: list[str], tmp_path: Path) -> None:
    env = {
        **os.environ,
        "MILVUS_URI": str(tmp_path / "milvus.db"),
        "EMBEDDINGS": "local",
        "CHAINLIT_AUTH_SECRET": "test-secret-" + "x" * 40,  # scripts/run.sh provides one
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}",
    }
    env.pop("CI", None)  # `chainlit run` treats CI=true as --ci
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


def test_importing_the_app_does_no_work(tmp_path: Path) -> None:
    """No settings read, no store opened, no pymilvus loaded, nothing written."""
    env = {**os.environ, "MILVUS_URI": "not a uri", "MILVUS_LITE_PATH": str(tmp_path / "kb")}
    code = (
        "import sys, app, ui.runtime, ui.conversation, core.resources, chains.cli, ingest.cli\n"
        "assert 'pymilvus' not in sys.modules and 'langchain_milvus' not in sys.modules\n"
        "print('imported')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "imported"
    assert not (tmp_path / "kb").exists()
