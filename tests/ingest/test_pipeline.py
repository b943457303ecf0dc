"""The ingest pipeline on a real Milvus Lite collection, with deterministic fake embeddings."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from langchain_core.embeddings import Embeddings

from core.errors import ModelUnavailable
from core.knowledge import (
    LIBRARY_OWNER,
    AccessScope,
    ChunkRecord,
    DocumentKey,
    Hit,
    SearchRequest,
    StoredVersion,
)
from core.store import MilvusKnowledgeBase as KnowledgeBase
from ingest.chunking import Origin
from ingest.pipeline import IngestOptions, Ingestor, ProgressEvent
from tests.conftest import OpenKB
from tests.samples import pdf_bytes, write

pytestmark = pytest.mark.integration

OPTIONS = IngestOptions(chunk_size=200, chunk_overlap=20, batch_size=3, concurrency=3)


def long_text(topic: str, sentences: int = 20) -> str:
    return "".join(f"Sentence {n} of the document about {topic}. " for n in range(sentences))


EVERYTHING = AccessScope.everything()


def _origin(document: DocumentKey) -> Origin:
    return Origin(document, added_at=1)


async def rows(kb: KnowledgeBase, source: str) -> list[Hit]:
    """Every stored chunk of the library document `source`."""
    request = SearchRequest(source, AccessScope.library(), "dense", 100, 100, 0.5, (source,))
    return await kb.search(request)


async def versions(kb: KnowledgeBase, source: str) -> list[StoredVersion]:
    return await kb.stored_versions(DocumentKey(LIBRARY_OWNER, source))


async def test_add_then_unchanged_then_replaced(lite_kb: KnowledgeBase, tmp_path: Path) -> None:
    ingestor = Ingestor(lite_kb, OPTIONS)
    path = write(tmp_path / "a.txt", long_text("apples"))

    first = await ingestor.ingest_file(path, "a.txt")
    assert first.status == "added" and first.chunks > 3
    assert len(await rows(lite_kb, "a.txt")) == first.chunks

    again = await ingestor.ingest_file(path, "a.txt")
    assert (again.status, again.chunks) == ("unchanged", first.chunks)
    assert await lite_kb.count(EVERYTHING) == first.chunks

    write(path, long_text("pears", 8))
    changed = await ingestor.ingest_file(path, "a.txt")
    assert changed.status == "replaced"
    stored = await rows(lite_kb, "a.txt")
    assert len(stored) == changed.chunks == await lite_kb.count(EVERYTHING)
    (version,) = await versions(lite_kb, "a.txt")
    assert version.complete and version.stored == changed.chunks
    assert sorted(h.chunk for h in stored) == list(range(changed.chunks))


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
    """Wraps `kb.add_chunks` to fail on the n-th call (an injected mid-write failure)."""

    def __init__(self, kb: KnowledgeBase, fail_on_call: int) -> None:
        self.real = kb.add_chunks
        self.calls = 0
        self.fail_on_call = fail_on_call

    async def __call__(self, chunks: list[ChunkRecord]) -> None:
        self.calls += 1
        if self.calls == self.fail_on_call:
            await asyncio.sleep(0.05)  # let the other batches land first
            raise ConnectionError("milvus went away")
        await self.real(chunks)


async def test_failed_write_leaves_nothing_half_written(
    lite_kb: KnowledgeBase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingestor = Ingestor(lite_kb, OPTIONS)
    old = write(tmp_path / "v1" / "doc.txt", long_text("version one", 10))
    kept = await ingestor.ingest_file(old, "doc.txt")
    assert kept.status == "added"
    (kept_version,) = await versions(lite_kb, "doc.txt")
    kept_hash = kept_version.file_hash

    new = write(tmp_path / "v2" / "doc.txt", long_text("version two", 40))
    monkeypatch.setattr(lite_kb, "add_chunks", FailingAfter(lite_kb, fail_on_call=3))
    outcome = await ingestor.ingest_file(new, "doc.txt")

    assert outcome.status == "failed"
    assert "partial chunks were removed" in (outcome.reason or "")
    stored = await rows(lite_kb, "doc.txt")
    assert len(stored) == kept.chunks  # exactly the old version, nothing of the new one
    assert await versions(lite_kb, "doc.txt") == [
        StoredVersion(kept_hash, kept.chunks, kept.chunks)
    ]


class EmbeddingServiceGone:
    """Wraps `kb.add_chunks` to fail as `core.providers` reports a remote embedding
    service that lost its model part way through."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.real = kb.add_chunks
        self.calls = 0

    async def __call__(self, chunks: list[ChunkRecord]) -> None:
        self.calls += 1
        if self.calls == 2:
            raise ModelUnavailable(
                "The embedding service has no model 'm' (HTTP 404). Set EMBEDDING_MODEL ...",
                public="The embedding model is not available: tell the administrator.",
            )
        await self.real(chunks)


async def test_a_failure_with_words_for_the_chat_keeps_them_apart(
    lite_kb: KnowledgeBase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operator's wording (a setting to change) was the only one, so an upload in the
    chat showed it too."""
    monkeypatch.setattr(lite_kb, "add_chunks", EmbeddingServiceGone(lite_kb))
    ingestor = Ingestor(lite_kb, OPTIONS)
    outcome = await ingestor.ingest_file(write(tmp_path / "c.txt", long_text("c", 40)), "c.txt")
    assert outcome.status == "failed"
    assert "Set EMBEDDING_MODEL" in (outcome.reason or "")
    assert outcome.public_reason == (
        "storing its chunks failed part way (The embedding model is not available: tell the "
        "administrator.); the partial chunks were removed and any earlier version is unchanged"
    )
    assert await rows(lite_kb, "c.txt") == []


async def test_failed_first_ingest_leaves_no_rows(
    lite_kb: KnowledgeBase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingestor = Ingestor(lite_kb, OPTIONS)
    warm = await ingestor.ingest_file(write(tmp_path / "w.txt", "warm up"), "w.txt")
    assert warm.status == "added"
    monkeypatch.setattr(lite_kb, "add_chunks", FailingAfter(lite_kb, fail_on_call=2))
    outcome = await ingestor.ingest_file(write(tmp_path / "b.txt", long_text("b", 40)), "b.txt")
    assert outcome.status == "failed"
    assert await rows(lite_kb, "b.txt") == []


async def test_many_files_at_once_on_a_new_collection_lose_nothing(
    lite_kb: KnowledgeBase, tmp_path: Path
) -> None:
    """Concurrent writes into a fresh collection are all kept."""
    files = [
        (write(tmp_path / f"f{i}.txt", long_text(f"topic {i}", 6)), f"f{i}.txt") for i in range(12)
    ]
    ingestor = Ingestor(
        lite_kb, IngestOptions(chunk_size=200, chunk_overlap=20, batch_size=2, concurrency=8)
    )
    outcomes = await ingestor.ingest_many(files)
    assert all(o.status == "added" for o in outcomes), outcomes
    assert await lite_kb.count(EVERYTHING) == sum(o.chunks for o in outcomes)


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
    assert sorted(h.page or 0 for h in await rows(lite_kb, "good.pdf")) == [1, 2]


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


async def test_owners_have_their_own_documents_of_the_same_name(
    lite_kb: KnowledgeBase, tmp_path: Path
) -> None:
    ingestor = Ingestor(lite_kb, OPTIONS)
    ada = await ingestor.ingest_file(
        write(tmp_path / "a" / "n.md", "Ada's notes."), "n.md", owner="ada"
    )
    bob = await ingestor.ingest_file(
        write(tmp_path / "b" / "n.md", "Bob's notes."), "n.md", owner="bob", chat_id="c-b"
    )
    same = await ingestor.ingest_file(
        write(tmp_path / "c" / "n.md", "Ada's notes."), "n.md", owner="bob"
    )
    assert (ada.status, bob.status, same.status) == ("added", "added", "replaced")
    listed = await lite_kb.list_documents(EVERYTHING)
    assert sorted((d.owner, d.source) for d in listed) == [("ada", "n.md"), ("bob", "n.md")]
    assert await lite_kb.count(AccessScope.for_user("ada")) == 1


async def test_leftovers_of_an_interrupted_run_are_replaced(
    lite_kb: KnowledgeBase, tmp_path: Path
) -> None:
    ingestor = Ingestor(lite_kb, OPTIONS)
    path = write(tmp_path / "doc.txt", long_text("resumed", 12))
    complete = await ingestor.ingest_file(path, "doc.txt")
    (version,) = await versions(lite_kb, "doc.txt")
    # a killed run of the same file left its first two chunks only
    doc = DocumentKey(LIBRARY_OWNER, "doc.txt")
    await lite_kb.delete_version(doc, version.file_hash)
    partial = [c for c in ingestor._prepare(path, _origin(doc)).chunks if c.chunk < 2]
    await lite_kb.add_chunks(partial)
    assert (await versions(lite_kb, "doc.txt"))[0].complete is False

    again = await ingestor.ingest_file(path, "doc.txt")
    assert (again.status, again.chunks) == ("added", complete.chunks)
    (restored,) = await versions(lite_kb, "doc.txt")
    assert restored.complete and restored.stored == complete.chunks


async def test_a_new_version_stays_hidden_until_all_of_it_is_stored(
    lite_kb: KnowledgeBase, tmp_path: Path
) -> None:
    """While a changed file's batches are being written, searches, counts and the listing
    still see the old version only; the commit shows the new one whole."""
    ingestor = Ingestor(lite_kb, OPTIONS)
    path = write(tmp_path / "a.txt", long_text("apples", 6))
    old = await ingestor.ingest_file(path, "a.txt")
    seen: list[tuple[set[str], int, list[int]]] = []

    async def look(event: ProgressEvent) -> None:
        if event.stage == "stored" and event.chunks_done < event.chunks_total:
            hits = await rows(lite_kb, "a.txt")
            docs = await lite_kb.list_documents(EVERYTHING)
            seen.append(
                (
                    {h.text.split(" of the document about ")[1][:5] for h in hits},
                    await lite_kb.count(EVERYTHING),
                    [d.chunks for d in docs],
                )
            )

    write(path, long_text("pears", 30))
    new = await ingestor.ingest_file(path, "a.txt", on_progress=look)
    assert new.status == "replaced" and seen
    assert all(snapshot == ({"apple"}, old.chunks, [old.chunks]) for snapshot in seen), seen
    assert {
        h.text.split(" of the document about ")[1][:5] for h in await rows(lite_kb, "a.txt")
    } == {"pears"}
