"""Shared helpers for the benchmarks: stores, a Milvus server, timing, tables."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib.metadata
import os
import platform
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"


def command_line() -> str:
    return "python -m " + " ".join(
        shlex.quote(a)
        for a in [sys.modules["__main__"].__spec__.name, *sys.argv[1:]]  # type: ignore[union-attr]
    )


def versions(server_version: str | None = None) -> str:
    names = [
        "langchain-milvus",
        "pymilvus",
        "milvus-lite",
        "langchain-core",
        "onnxruntime",
    ]
    parts = [f"{n} {importlib.metadata.version(n)}" for n in names]
    if server_version:
        parts.append(f"server {server_version}")
    parts.append(f"Python {platform.python_version()} on {platform.machine()}")
    return ", ".join(parts)


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(c) for c in row] for row in rows]
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(out)


def percentile(values: list[float], pct: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(pct) - 1]


class Timer:
    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def milvus_server() -> Iterator[str]:
    """Start the `milvus` pip package's Milvus 2.3.5 standalone; yields its URI."""
    from milvus import MilvusServer

    with scratch("bench-milvus-") as base:
        server = MilvusServer()
        server.set_base_dir(str(base))
        port = free_port()
        server.config.set("proxy_port", port)
        server.start()
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.stop()


@contextlib.contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A folder for one run's files (a Milvus Lite store, a generated corpus), removed
    with everything in it when the run ends, and again at exit: Milvus Lite in process
    closes its data, writing its last files, only when the process exits (its server
    outlives the app's clients). It registers that on the first connection, after this
    folder's removal was registered, so it runs first."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def backend(args: argparse.Namespace) -> Iterator[str | None]:
    """The store a benchmark runs on: a server it starts (`--start-server`), the `--uri`
    given, or None for Milvus Lite in process."""
    if args.start_server:
        with milvus_server() as uri:
            yield uri
    else:
        yield args.uri


def bench_settings(uri: str | None, lite_dir: Path) -> Settings:
    """Local embeddings, and the Milvus server at `uri` or Milvus Lite in `lite_dir`."""
    return Settings(
        _env_file=None, milvus_uri=uri, milvus_lite_path=lite_dir / "milvus.db", embeddings="local"
    )


def sample_store_env(folder: Path) -> dict[str, str]:
    """The environment for the app's commands on a new Milvus Lite store in `folder` that
    holds the sample corpus: local embeddings, no chat model. The corpus is ingested by
    `python -m ingest` in its own process (Milvus Lite's lock lasts as long as a process)."""
    env = {**os.environ, "EMBEDDINGS": "local", "MILVUS_LITE_PATH": str(folder / "milvus.db")}
    for name in ("MILVUS_URI", "MILVUS_TOKEN", "EMBEDDING_MODEL"):
        env.pop(name, None)
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        env.pop(name, None)
    ingest = [sys.executable, "-m", "ingest", str(SAMPLE)]
    subprocess.run(ingest, cwd=ROOT, env=env, check=True, capture_output=True)
    return env
