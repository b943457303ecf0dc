"""Hybrid search with the real local embedding model on Milvus Lite: the keyword route
finds the exact identifier the dense route misses, the dense route the paraphrase BM25
cannot match, and hybrid search gets both."""

from __future__ import annotations

import pytest
from langchain_core.embeddings import Embeddings

from core.knowledge import AccessScope, SearchMode, SearchRequest
from core.settings import Settings
from core.store import MilvusKnowledgeBase
from tests.conftest import OpenKB, record

pytestmark = pytest.mark.integration

DOCS = [
    (
        "os-flags.html",
        "Constants for the flags parameter of os.open: O_RDONLY, O_WRONLY, O_RDWR, O_APPEND, "
        "O_CREAT, O_EXCL, O_TRUNC, O_DSYNC, O_RSYNC, O_SYNC, O_NDELAY, O_NONBLOCK, O_NOCTTY, "
        "O_CLOEXEC, O_TMPFILE. Combine them with the bitwise OR operator.",
    ),
    (
        "tempfile.html",
        "The tempfile module creates temporary files and directories securely; mkstemp "
        "returns a file descriptor for a new temporary file that is removed when closed.",
    ),
    ("time.html", "time.sleep suspends execution of the calling thread for the given seconds."),
    (
        "asyncio.html",
        "asyncio.timeout is an asynchronous context manager that cancels the enclosed work "
        "when the deadline passes.",
    ),
    ("shutil.html", "shutil.copyfile copies the contents of a file to another path."),
]


@pytest.fixture
async def kb(
    open_kb: OpenKB, settings: Settings, local_embeddings: Embeddings
) -> MilvusKnowledgeBase:
    real = settings.model_copy(update={"embeddings": "local"})
    kb = await open_kb(local_embeddings, settings_=real)
    await kb.add_chunks([record(text, source) for source, text in DOCS])
    await kb.flush()
    return kb


async def sources(kb: MilvusKnowledgeBase, query: str, mode: SearchMode, k: int) -> list[str]:
    request = SearchRequest(query, AccessScope.everything(), mode, k, 20, 0.5)
    return [hit.source for hit in await kb.search(request)]


async def test_an_exact_identifier_needs_the_keyword_route(kb: MilvusKnowledgeBase) -> None:
    question = "What is O_TMPFILE?"
    assert await sources(kb, question, "dense", 1) == ["tempfile.html"]  # the wrong page
    assert await sources(kb, question, "keyword", 1) == ["os-flags.html"]
    assert "os-flags.html" in await sources(kb, question, "hybrid", 2)


async def test_a_paraphrase_needs_the_dense_route(kb: MilvusKnowledgeBase) -> None:
    question = "pause my script for a little while"
    assert await sources(kb, question, "keyword", 4) == []  # no word in common
    assert (await sources(kb, question, "dense", 1)) == ["time.html"]
    assert (await sources(kb, question, "hybrid", 1)) == ["time.html"]


async def test_mmr_over_hybrid_returns_distinct_passages(kb: MilvusKnowledgeBase) -> None:
    found = await sources(kb, "What is O_TMPFILE?", "mmr", 3)
    assert len(found) == len(set(found)) == 3
    assert "os-flags.html" in found
