"""Shared fixtures: settings on a temporary Milvus Lite path, fake and real embeddings."""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable, Iterator
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

from core.settings import Settings  # noqa: E402  (after the environment is cleaned)
from core.store import KnowledgeBase  # noqa: E402
from tests.openai_standin import OpenAIStandIn  # noqa: E402

OpenKB = Callable[..., Awaitable[KnowledgeBase]]

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
def open_kb(settings: Settings) -> OpenKB:
    """Open a KnowledgeBase inside the test's event loop: `await open_kb(embeddings)`."""

    async def opener(
        embeddings: Embeddings, *, settings_: Settings | None = None, **kwargs: bool | str
    ) -> KnowledgeBase:
        return await KnowledgeBase.open(settings_ or settings, embeddings, **kwargs)  # type: ignore[arg-type]

    return opener


@pytest.fixture
async def fake_kb(open_kb: OpenKB, fake_embeddings: Embeddings) -> KnowledgeBase:
    return await open_kb(fake_embeddings)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def milvus_server_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Milvus standalone server (the `milvus` pip package, 2.3.5), started once."""
    try:
        from milvus import MilvusServer
    except ImportError as exc:
        pytest.skip(f"the milvus package is not installed: {exc}")
    server = MilvusServer()
    server.set_base_dir(str(tmp_path_factory.mktemp("milvus-server")))
    port = free_port()
    server.config.set("proxy_port", port)
    try:
        server.start()
    except Exception as exc:  # binary missing, ports taken, start timeout
        server.stop()
        pytest.skip(f"the Milvus server could not start: {type(exc).__name__}: {exc}")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def openai_standin() -> Iterator[OpenAIStandIn]:
    server = OpenAIStandIn().start()
    try:
        yield server
    finally:
        server.stop()


# A small knowledge base on real Milvus Lite with deterministic fake embeddings: with
# `DeterministicFakeEmbedding`, a query equal to a passage's text embeds to the same vector,
# so tests know which passage must rank first.
PASSAGES = [
    ("alpha text about apples", {"source": "a.txt", "chunk": 0, "chunks": 1, "chat_id": "chat-A"}),
    ("beta text about bananas", {"source": "b.txt", "chunk": 0, "chunks": 1, "chat_id": "chat-B"}),
    ("gamma text about grapes", {"source": "c.pdf", "chunk": 0, "chunks": 1, "page": 2}),
    ("delta text about dates", {"source": 'd "quoted".md', "chunk": 0, "chunks": 1}),
]


@pytest.fixture
async def seeded_kb(open_kb: OpenKB, fake_embeddings: Embeddings) -> KnowledgeBase:
    kb = await open_kb(fake_embeddings)
    texts = [t for t, _ in PASSAGES]
    metadatas = [dict(m) for _, m in PASSAGES]
    await kb.add_texts(texts, metadatas, [f"id{i}" for i in range(len(texts))])
    return kb


class PromptRecorder(AsyncCallbackHandler):
    """Records the messages every chat model call receives."""

    def __init__(self) -> None:
        self.calls: list[list[BaseMessage]] = []

    async def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[BaseMessage]], **kwargs: Any
    ) -> None:
        self.calls.extend(messages)
