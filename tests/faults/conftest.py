"""Fault-test fixtures: a `milvus-lite server` process the test can kill and start again,
and the knowledge base and RAG chain over it (fake embeddings: the faults are the point)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding

from chains.rag import RagChain, build_rag_chain, rag_input
from chains.retriever import PassageRetriever
from core.knowledge import AccessScope
from core.settings import Settings
from core.store import MilvusKnowledgeBase
from tests.conftest import FAKE_DIM, PASSAGES, free_port, make_settings

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


@pytest.fixture
def lite_server(tmp_path: Path) -> Iterator[LiteServer]:
    server = LiteServer(tmp_path / "lite-server.db", free_port())
    server.start()
    try:
        yield server
    finally:
        server.kill()


def server_settings(tmp_path: Path, uri: str, **overrides: object) -> Settings:
    """Settings on a Milvus URI with a short timeout (faults should fail fast)."""
    return make_settings(tmp_path, milvus_uri=uri, milvus_timeout=5.0, **overrides)


@pytest.fixture
async def served_kb(tmp_path: Path, lite_server: LiteServer) -> AsyncIterator[MilvusKnowledgeBase]:
    """`PASSAGES` in a knowledge base on the lite server."""
    settings = server_settings(tmp_path, lite_server.uri)
    kb = await MilvusKnowledgeBase.open(settings, DeterministicFakeEmbedding(size=FAKE_DIM))
    await kb.add_chunks(PASSAGES)
    await kb.flush()
    yield kb
    await kb.close()


def retrieval_chain(kb: MilvusKnowledgeBase) -> RagChain:
    """The real RAG chain over `kb`, answering retrieval-only (no model to fault)."""
    return build_rag_chain(PassageRetriever(searcher=kb), None)


async def ask(chain: RagChain, question: str = "gamma text about grapes") -> str:
    """One question through the chain; the answer text."""
    answer = ""
    async for chunk in chain.astream(rag_input(question, scope=AccessScope.everything())):
        answer += chunk.get("answer", "")
    return answer
