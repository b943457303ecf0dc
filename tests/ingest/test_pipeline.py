"""The ingest pipeline on a real Milvus Lite collection, with deterministic fake embeddings."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from core.filters import MilvusFilter
from langchain_core.embeddings import Embeddings

from core.store import KnowledgeBase
from ingest.pipeline import IngestOptions, Ingestor, ProgressEvent
from tests.conftest import OpenKB
from tests.samples import pdf_bytes, write

pytestmark = pytest.mark.integration

OPTIONS = IngestOptions(chunk_size=200, chunk_overlap=20, batch_size=3, concurrency=3)


def long_text(topic: str, sentences: int = 20) -> str:
    return "".join(f"Sentence {n} of the document about {topic}. " for n in range(sentences))


async def rows(kb: KnowledgeBase, source: str) -> list[dict[str, Any]]:
    return await kb.query(MilvusFilter.equals("source", source), ["chunk", "chunks", "file_hash"])


async def test_add_then_unchanged_then_replaced(lite_kb: KnowledgeBase, tmp_path: Path) -> None:
    ingestor = Ingestor(lite_kb, OPTIONS)
    path = write(tmp_path / "a.txt", long_text("apples"))

    first = await ingestor.ingest_file(path, "a.txt")
    assert first.status == "added" and first.chunks > 3
    assert len(await rows(lite_kb, "a.txt")) == first.chunks

    again = await ingestor.ingest_file(path, "a.txt")
    assert (again.status, again.chunks) == ("unchanged", first.chunks)
    assert await lite_kb.count() == first.chunks

    write(path, long_text("pears", 8))
    changed = await ingestor.ingest_file(path, "a.txt")
    assert changed.status == "replaced"
    stored = await rows(lite_kb, "a.txt")
    assert len(stored) == changed.chunks == await lite_kb.count()
    assert len({r["file_hash"] for r in stored}) == 1
    assert sorted(r["chunk"] for r in stored) == list(range(changed.chunks))


async def test_progress_is_reported_in_order(lite_kb: KnowledgeBase, tmp_path: Path) -> None:
    events: list[ProgressEvent] = []

    async def record(event: ProgressEvent) -> None:
        events.append(event)

    path = write(tmp_path / "a.txt", long_text("progress"))
    outcome = await Ingestor(lite_kb, OPTIONS).ingest_file(path, "a.txt", on_progress=record)
    stages = [e.stage for e in events]
    assert stages[:3] == ["reading", "chunked", "embedding"]
    assert stages[-1] == "done"
    stored = [e.chunks_done for e in events if e.stage == "stored"]
    assert stored == sorted(stored) and stored[-1] == outcome.chunks


class FailingAfter:
    """Wraps `kb.add_texts` to fail on the n-th call (an injected mid-write failure)."""

    def __init__(self, kb: KnowledgeBase, fail_on_call: int) -> None:
        self.real = kb.add_texts
        self.calls = 0
        self.fail_on_call = fail_on_call

    async def __call__(
        self, texts: list[str], metadatas: list[dict[str, Any]], ids: list[str]
    ) -> None:
        self.calls += 1
        if self.calls == self.fail_on_call:
            await asyncio.sleep(0.05)  # let the other batches land first
            raise ConnectionError("milvus went away")
        await self.real(texts, metadatas, ids)


async def test_failed_write_leaves_nothing_half_written(
    lite_kb: KnowledgeBase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingestor = Ingestor(lite_kb, OPTIONS)
    old = write(tmp_path / "v1" / "doc.txt", long_text("version one", 10))
    kept = await ingestor.ingest_file(old, "doc.txt")
    assert kept.status == "added"

    new = write(tmp_path / "v2" / "doc.txt", long_text("version two", 40))
    monkeypatch.setattr(lite_kb, "add_texts", FailingAfter(lite_kb, fail_on_call=3))
    outcome = await ingestor.ingest_file(new, "doc.txt")

    assert outcome.status == "failed"
    assert "partial chunks were removed" in (outcome.reason or "")
    stored = await rows(lite_kb, "doc.txt")
    assert len(stored) == kept.chunks  # exactly the old version, nothing of the new one
    assert {r["chunks"] for r in stored} == {kept.chunks}


async def test_failed_first_ingest_leaves_no_rows(
    lite_kb: KnowledgeBase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingestor = Ingestor(lite_kb, OPTIONS)
    warm = await ingestor.ingest_file(write(tmp_path / "w.txt", "warm up"), "w.txt")
    assert warm.status == "added"
    monkeypatch.setattr(lite_kb, "add_texts", FailingAfter(lite_kb, fail_on_call=2))
    outcome = await ingestor.ingest_file(write(tmp_path / "b.txt", long_text("b", 40)), "b.txt")
    assert outcome.status == "failed"
    assert await rows(lite_kb, "b.txt") == []


async def test_many_files_at_once_on_a_new_collection_lose_nothing(
    lite_kb: KnowledgeBase, tmp_path: Path
) -> None:
    """Concurrent first inserts must not race to create the collection."""
    assert not lite_kb.exists
    files = [
        (write(tmp_path / f"f{i}.txt", long_text(f"topic {i}", 6)), f"f{i}.txt") for i in range(12)
    ]
    ingestor = Ingestor(
        lite_kb, IngestOptions(chunk_size=200, chunk_overlap=20, batch_size=2, concurrency=8)
    )
    outcomes = await ingestor.ingest_many(files)
    assert all(o.status == "added" for o in outcomes), outcomes
    assert await lite_kb.count() == sum(o.chunks for o in outcomes)


async def test_bad_files_do_not_spoil_good_ones(lite_kb: KnowledgeBase, tmp_path: Path) -> None:
    files = [
        (write(tmp_path / "good.txt", long_text("good")), "good.txt"),
        (write(tmp_path / "empty.txt", b""), "empty.txt"),
        (write(tmp_path / "big.txt", "x" * 3 * 1024 * 1024), "big.txt"),
        (write(tmp_path / "good.pdf", pdf_bytes(["Page one words", "Page two words"])), "good.pdf"),
    ]
    options = IngestOptions(chunk_size=200, chunk_overlap=20, max_file_bytes=2 * 1024 * 1024)
    by_source = {o.source: o for o in await Ingestor(lite_kb, options).ingest_many(files)}
    assert by_source["good.txt"].status == "added"
    assert by_source["good.pdf"].status == "added"
    assert by_source["empty.txt"].reason == "the file is empty (0 bytes)"
    assert by_source["big.txt"].reason == "the file is 3.0 MB, over the limit of 2 MB"
    assert await rows(lite_kb, "big.txt") == []
    pages = await lite_kb.query(MilvusFilter.equals("source", "good.pdf"), ["page"])
    assert sorted(r["page"] for r in pages) == [1, 2]


async def test_embedding_mismatch_is_a_clear_error(
    open_kb: OpenKB, fake_embeddings: Embeddings, tmp_path: Path
) -> None:
    from langchain_core.embeddings import DeterministicFakeEmbedding

    from core.errors import EmbeddingMismatch

    kb = await open_kb(fake_embeddings)
    await Ingestor(kb, OPTIONS).ingest_file(write(tmp_path / "a.txt", "some text"), "a.txt")
    with pytest.raises(EmbeddingMismatch) as info:
        await open_kb(DeterministicFakeEmbedding(size=32))
    message = str(info.value)
    assert "16-dimensional" in message and "32-dimensional" in message
    assert "--drop" in message
