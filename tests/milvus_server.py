"""A real Milvus standalone server (the `milvus` pip package, 2.3.5) that tests can pause,
kill and start again in place."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class MilvusServerProcess:
    """One Milvus 2.3.5 server on its own data directory and proxy port.

    `start()` after `kill()` brings the same server back on the same ports. The package
    does not by itself: before each start it checks every port with a plain `bind`, which
    fails while the killed server's connections linger in TIME_WAIT, and then quietly
    moves that service to the next free port, so clients (and the server's own records of
    its services) look for it where it no longer is.
    """

    def __init__(self, base_dir: Path, port: int) -> None:
        from milvus import MilvusServer  # the package is a dev extra; callers skip without it

        self._server: Any = MilvusServer()
        self._server.set_base_dir(str(base_dir))
        self.port = port
        self._server.config.set("proxy_port", port)
        self.uri = f"http://127.0.0.1:{self.port}"
        self._ports_pinned = False

    def start(self) -> None:
        """Start, and return once the server reports itself healthy (raises if it does
        not within the package's wait, 180 s)."""
        self._server.start()
        if not self._ports_pinned:
            config = self._server.config
            ports = {k: v[1] for k, v in config.configurable_items.items() if k.endswith("_port")}
            config.configs.update(ports)  # explicit ports are checked, never moved
            config.try_bind_port = _bind_reusing_address
            self._ports_pinned = True

    def wait_until_loaded(self, collections: Iterable[str], timeout: float = 120.0) -> None:
        """Until the server has loaded `collections` again after a restart. A 2.3.5 server
        that was killed does so only once the sessions of its old processes expire
        (`common.session.ttl`, 30 s), whoever asks it to load them meanwhile."""
        from pymilvus import MilvusClient

        client = MilvusClient(uri=self.uri, timeout=10)
        deadline = time.monotonic() + timeout
        try:
            for name in collections:
                while client.get_load_state(name)["state"].name != "Loaded":
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{name} was not loaded again in {timeout:g} s")
                    time.sleep(0.5)
        finally:
            client.close()

    @property
    def pid(self) -> int:
        return int(self._server.server_proc.pid)

    def pause(self) -> None:
        """SIGSTOP: hung, its connections still open."""
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL: no chance to flush or close anything."""
        os.kill(self.pid, signal.SIGKILL)
        self._server.server_proc.wait()
        self.stop()

    def stop(self) -> None:
        self._server.stop()


def _bind_reusing_address(port: int) -> socket.socket | None:
    """The package's port check, allowing TIME_WAIT as the server itself does."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen()
    except OSError:
        sock.close()
        return None
    return sock
