"""Fault-test fixtures: a `milvus-lite server` process the test can kill and start again,
and the knowledge base and RAG chain over it or the Milvus 2.3.5 server (fake
embeddings: the faults are the point)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding

from chains.rag import RagChain, build_rag_chain, rag_input
from chains.retriever import PassageRetriever
from core.knowledge import AccessScope
from core.settings import Settings
from core.store import MilvusKnowledgeBase
from tests.conftest import FAKE_DIM, PASSAGES, make_settings
from tests.lite_server import LiteServer

__all__ = ["LiteServer", "ask", "retrieval_chain", "seeded_server_kb", "server_settings"]


def server_settings(tmp_path: Path, uri: str, **overrides: object) -> Settings:
    """Settings on a Milvus URI with a short timeout (faults should fail fast)."""
    return make_settings(tmp_path, **{"milvus_uri": uri, "milvus_timeout": 5.0, **overrides})


@pytest.fixture
async def served_kb(tmp_path: Path, lite_server: LiteServer) -> AsyncIterator[MilvusKnowledgeBase]:
    """`PASSAGES` in a knowledge base on the lite server."""
    settings = server_settings(tmp_path, lite_server.uri)
    kb = await MilvusKnowledgeBase.open(settings, DeterministicFakeEmbedding(size=FAKE_DIM))
    await kb.add_chunks(PASSAGES)
    await kb.flush()
    yield kb
    await kb.close()


async def seeded_server_kb(settings: Settings) -> MilvusKnowledgeBase:
    """`PASSAGES` stored through one handle (a patient one: the server may be busy
    starting), then a knowledge base on `settings` to ask through."""
    embeddings = DeterministicFakeEmbedding(size=FAKE_DIM)
    patient = settings.model_copy(update={"milvus_timeout": 30.0})
    seeding = await MilvusKnowledgeBase.open(patient, embeddings)
    await seeding.add_chunks(PASSAGES)
    await seeding.flush()
    await seeding.close()
    return await MilvusKnowledgeBase.open(settings, embeddings)


def retrieval_chain(kb: MilvusKnowledgeBase) -> RagChain:
    """The real RAG chain over `kb`, answering retrieval-only (no model to fault)."""
    return build_rag_chain(PassageRetriever(searcher=kb), None)


async def ask(chain: RagChain, question: str = "gamma text about grapes") -> str:
    """One question through the chain; the answer text."""
    answer = ""
    async for chunk in chain.astream(rag_input(question, scope=AccessScope.everything())):
        answer += chunk.get("answer", "")
    return answer
