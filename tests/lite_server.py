"""A `milvus-lite server` process for tests that kill the store and start it again."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

LITE_SERVER = Path(sys.executable).parent / "milvus-lite"


class LiteServer:
    """A `milvus-lite server` on a fixed port and data directory, restartable."""

    def __init__(self, data: Path, port: int) -> None:
        self.data = data
        self.port = port
        self.uri = f"http://127.0.0.1:{port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [
                str(LITE_SERVER),
                "server",
                "--data-dir",
                str(self.data),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("milvus-lite server did not start in 30 s")

    def kill(self) -> None:
        """SIGKILL: no chance to flush or close anything."""
        if self._process is not None and self._process.poll() is None:
            os.kill(self._process.pid, signal.SIGKILL)
            self._process.wait()
        self._process = None
