"""Shared fixtures: settings on a temporary Milvus Lite path, fake and real embeddings."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings
from langchain_core.messages import BaseMessage

# Never let a test talk to a real hub or API by accident, whatever the shell exports.
for _name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "MILVUS_URI", "MILVUS_TOKEN", "EMBEDDINGS"):
    os.environ.pop(_name, None)
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

from core.knowledge import LIBRARY_OWNER, ChunkRecord, DocumentKey  # noqa: E402
from core.settings import Settings  # noqa: E402  (after the environment is cleaned)
from core.store import MilvusKnowledgeBase  # noqa: E402
from ingest.chunking import chunk_id  # noqa: E402
from tests.fakes import InMemoryKnowledgeBase  # noqa: E402
from tests.history_db import (  # noqa: E402, F401  (fixtures: the history database)
    accounts,
    database,
    history_settings,
    postgres,
)
from tests.lite_server import LiteServer  # noqa: E402
from tests.milvus_server import MilvusServerProcess  # noqa: E402
from tests.openai_standin import OpenAIStandIn  # noqa: E402
from tests.ui.conftest import chainlit_events  # noqa: E402, F401  (fixture)

OpenKB = Callable[..., Awaitable[MilvusKnowledgeBase]]

FAKE_DIM = 16


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "milvus_lite_path": tmp_path / "milvus.db",
        "milvus_collection": "test_docs",
        "chunk_size": 400,
        "chunk_overlap": 40,
        "ingest_batch_size": 8,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def fake_embeddings() -> Embeddings:
    return DeterministicFakeEmbedding(size=FAKE_DIM)


@pytest.fixture(scope="session")
def local_embeddings() -> Embeddings:
    """The real all-MiniLM-L6-v2 (loaded once per test run)."""
    from core.providers import build_embeddings

    return build_embeddings(Settings(_env_file=None, embeddings="local"))


@pytest.fixture
async def open_kb(settings: Settings) -> AsyncIterator[OpenKB]:
    """Open a knowledge base on Milvus Lite inside the test's event loop:
    `await open_kb(embeddings)`; closed after the test."""
    opened: list[MilvusKnowledgeBase] = []

    async def opener(
        embeddings: Embeddings, *, settings_: Settings | None = None, **kwargs: Any
    ) -> MilvusKnowledgeBase:
        kb = await MilvusKnowledgeBase.open(settings_ or settings, embeddings, **kwargs)
        opened.append(kb)
        return kb

    yield opener
    for kb in opened:
        await kb.close()


@pytest.fixture
async def lite_kb(open_kb: OpenKB, fake_embeddings: Embeddings) -> MilvusKnowledgeBase:
    """An empty knowledge base on real Milvus Lite, with deterministic fake embeddings."""
    return await open_kb(fake_embeddings)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MilvusServerProcess]:
    """A real Milvus standalone server (the `milvus` pip package, 2.3.5), started once."""
    server = start_milvus_server(tmp_path_factory.mktemp("milvus-server"))
    try:
        yield server
    finally:
        server.stop()


def start_milvus_server(base_dir: Path) -> MilvusServerProcess:
    """A started Milvus 2.3.5 server; skips the test where it cannot start (fails in CI).
    One at a time: its embedded etcd always takes port 2380."""
    try:
        server = MilvusServerProcess(base_dir, free_port())
    except ImportError as exc:
        pytest.skip(f"the milvus package is not installed: {exc}")
    try:
        server.start()
    except Exception as exc:  # binary missing, ports taken, start timeout
        server.stop()
        reason = f"the Milvus server could not start: {type(exc).__name__}: {exc}"
        if os.environ.get("CI"):  # in CI a missing backend is a failure, not a skip
            pytest.fail(reason)
        pytest.skip(reason)
    return server


@pytest.fixture(scope="session")
def milvus_server_uri(milvus_server: MilvusServerProcess) -> str:
    return milvus_server.uri


@pytest.fixture
def lite_server(tmp_path: Path) -> Iterator[LiteServer]:
    server = LiteServer(tmp_path / "lite-server.db", free_port())
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def openai_standin() -> Iterator[OpenAIStandIn]:
    server = OpenAIStandIn().start()
    try:
        yield server
    finally:
        server.stop()


def record(
    text: str,
    source: str,
    *,
    owner: str = LIBRARY_OWNER,
    chat_id: str | None = None,
    page: int | None = None,
    chunk: int = 0,
    chunks: int = 1,
    file_hash: str = "hash-1",
    added_at: int = 0,
) -> ChunkRecord:
    """A chunk as the ingest pipeline would make it."""
    document = DocumentKey(owner=owner, source=source)
    return ChunkRecord(
        id=chunk_id(document, file_hash, chunk),
        text=text,
        document=document,
        chunk=chunk,
        chunks=chunks,
        file_hash=file_hash,
        added_at=added_at,
        page=page,
        chat_id=chat_id,
    )


# A small knowledge base with deterministic fake embeddings: with `DeterministicFakeEmbedding`,
# a query equal to a passage's text embeds to the same vector, so tests know which passage
# must rank first. Alice and Bob each uploaded one file in a chat; two are in the library.
PASSAGES = [
    record("alpha text about apples", "a.txt", owner="alice", chat_id="chat-A"),
    record("beta text about bananas", "b.txt", owner="bob", chat_id="chat-B"),
    record("gamma text about grapes", "c.pdf", page=2),
    record("delta text about dates", 'd "quoted".md'),
]


@pytest.fixture
async def seeded_kb(lite_kb: MilvusKnowledgeBase) -> MilvusKnowledgeBase:
    """`PASSAGES` on real Milvus Lite."""
    await lite_kb.add_chunks(PASSAGES)
    return lite_kb


@pytest.fixture
async def memory_kb(fake_embeddings: Embeddings) -> InMemoryKnowledgeBase:
    """`PASSAGES` in the in-memory fake knowledge base."""
    kb = InMemoryKnowledgeBase(embeddings=fake_embeddings)
    await kb.add_chunks(PASSAGES)
    return kb


class PromptRecorder(AsyncCallbackHandler):
    """Records the messages every chat model call receives."""

    def __init__(self) -> None:
        self.calls: list[list[BaseMessage]] = []

    async def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[BaseMessage]], **kwargs: Any
    ) -> None:
        self.calls.extend(messages)
