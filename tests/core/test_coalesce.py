"""Coalescing: concurrent calls become batches, and results equal the uncoalesced path."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_milvus import Milvus

from core.batched_embeddings import CoalescingEmbeddings
from core.coalesce import Coalescer
from core.knowledge import LIBRARY_OWNER, AccessScope
from core.store import MilvusKnowledgeBase
from core.store.coalescing import CoalescingMilvus, merge_filters
from core.store.views import store_kwargs
from tests.conftest import record


class Recorder:
    def __init__(self, fail_on: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.fail_on = fail_on

    async def __call__(self, key: str, items: list[int]) -> list[int]:
        self.batches.append(items)
        await asyncio.sleep(0.01)
        if self.fail_on in items:
            raise ValueError(f"bad item {self.fail_on}")
        return [i * 10 for i in items]


async def test_concurrent_calls_share_a_batch_and_a_lone_call_runs_alone() -> None:
    recorder = Recorder()
    coalescer = Coalescer(recorder, max_batch=4)
    assert await coalescer.submit("k", 1) == 10
    results = await asyncio.gather(*(coalescer.submit("k", i) for i in range(10)))
    assert results == [i * 10 for i in range(10)]
    assert recorder.batches == [[1], [0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


async def test_different_keys_never_share_a_batch() -> None:
    recorder = Recorder()
    coalescer = Coalescer(recorder)
    await asyncio.gather(coalescer.submit("a", 1), coalescer.submit("b", 2))
    assert sorted(recorder.batches) == [[1], [2]]


async def test_a_failure_fails_only_its_batch() -> None:
    coalescer = Coalescer(Recorder(fail_on=3), max_batch=2)
    results = await asyncio.gather(
        *(coalescer.submit("k", i) for i in range(6)), return_exceptions=True
    )
    assert results[:2] == [0, 10]
    assert all(isinstance(r, ValueError) for r in results[2:4])
    assert results[4:] == [40, 50]


async def test_a_cancelled_caller_does_not_break_the_others() -> None:
    coalescer = Coalescer(Recorder())
    tasks = [asyncio.create_task(coalescer.submit("k", i)) for i in range(3)]
    tasks[1].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert done[0] == 0 and done[2] == 20
    assert isinstance(done[1], asyncio.CancelledError)


class CountingEmbeddings(DeterministicFakeEmbedding):
    calls: int = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        return super().embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        self.calls += 1
        return super().embed_query(text)


async def test_coalesced_embeddings_equal_direct_ones() -> None:
    inner = CountingEmbeddings(size=8)
    embeddings = CoalescingEmbeddings(inner)
    texts = [f"question {i}" for i in range(40)]
    vectors = await asyncio.gather(*(embeddings.aembed_query(t) for t in texts))
    assert vectors == [inner.embed_query(t) for t in texts]
    assert embeddings.stats["query_batches"] == 1
    lists = [[f"doc {i}-{j}" for j in range(i % 3 + 1)] for i in range(10)]
    docs = await asyncio.gather(*(embeddings.aembed_documents(texts) for texts in lists))
    assert docs == [inner.embed_documents(texts) for texts in lists]
    assert embeddings.stats["document_batches"] == 1


def plain_milvus(kb: MilvusKnowledgeBase) -> Milvus:
    return Milvus(
        embedding_function=DeterministicFakeEmbedding(size=16),
        **store_kwargs(kb._settings, kb.name, kb.capabilities),
    )


def assert_same_hits(coalesced: list[Any], alone: list[Any]) -> None:
    """The same documents in the same order, and the same scores but for float32's last
    bits: Milvus Lite's exact index scores a batch of questions in one matrix product,
    whose sums may round apart from one question's (0.15995103 against 0.15995109)."""
    assert [[doc for doc, _ in hits] for hits in coalesced] == [
        [doc for doc, _ in hits] for hits in alone
    ]
    for batched, single in zip(coalesced, alone, strict=True):
        assert [score for _, score in batched] == pytest.approx(
            [score for _, score in single], abs=1e-6
        )


def without_sparse(found: list[Any]) -> list[Any]:
    """Plain langchain-milvus also returns the BM25 sparse vector as metadata; ours not."""
    for item in found:
        doc = item[0] if isinstance(item, tuple) else item
        doc.metadata.pop("sparse", None)
    return found


@pytest.mark.integration
async def test_coalesced_searches_equal_uncoalesced(seeded_kb: MilvusKnowledgeBase) -> None:
    store = seeded_kb._store
    await seeded_kb.flush()
    plain = await asyncio.to_thread(plain_milvus, seeded_kb)
    queries = [f"{w} text about things {i}" for i in range(10) for w in ("alpha", "beta", "gamma")]
    expr = 'source != "b.txt"'

    async def both(method: str, **kwargs: Any) -> tuple[list[Any], list[Any]]:
        before = store._searches.batches
        coalesced = await asyncio.gather(*(getattr(store, method)(q, **kwargs) for q in queries))
        assert store._searches.batches - before < len(queries) / 2, "searches were not batched"
        alone = [without_sparse(await getattr(plain, method)(q, **kwargs)) for q in queries]
        return coalesced, alone

    coalesced, alone = await both("asimilarity_search_with_score", k=3)
    assert_same_hits(coalesced, alone)
    coalesced, alone = await both("asimilarity_search_with_score", k=2, expr=expr)
    assert_same_hits(coalesced, alone)
    assert all(d.metadata["source"] != "b.txt" for r in coalesced for d, _ in r)
    coalesced, alone = await both("amax_marginal_relevance_search", k=2, fetch_k=4)
    assert coalesced == alone


@pytest.mark.integration
async def test_concurrent_single_document_adds_become_batched_writes(
    open_kb: Any, fake_embeddings: Any
) -> None:
    kb: MilvusKnowledgeBase = await open_kb(fake_embeddings)
    seed = record("seed", "seed")
    await kb.add_chunks([seed])
    store = kb._store
    assert isinstance(store, CoalescingMilvus)
    metadata = {"owner": LIBRARY_OWNER, "chat_id": "", "page": 0, "chunk": 0, "chunks": 1}
    docs = [
        Document(
            page_content=f"document {i}",
            metadata={**metadata, "source": f"s{i}", "file_hash": "h", "added_at": 0},
        )
        for i in range(50)
    ]
    ids = await asyncio.gather(
        *(store.aadd_documents([d], ids=[f"id{i}"]) for i, d in enumerate(docs))
    )
    assert ids == [[f"id{i}"] for i in range(50)]
    assert store._inserts.batches < 10
    assert await kb.count(AccessScope.everything()) == 51

    deleted = await asyncio.gather(*(store.adelete(expr=f'pk == "id{i}"') for i in range(0, 50, 2)))
    assert all(deleted)
    assert store._deletes.batches < 10
    left = {d.source for d in await kb.list_documents(AccessScope.everything())}
    assert left == {"seed"} | {f"s{i}" for i in range(1, 50, 2)}


def test_merged_delete_filters_match_the_same_rows() -> None:
    assert merge_filters(['pk == "a"']) == 'pk == "a"'
    assert merge_filters(['pk == "a"', 'pk == "b\\"c"']) == 'pk in ["a", "b\\"c"]'
    assert merge_filters(["chunk == 1", "chunk == -2"]) == "chunk in [1, -2]"
    assert merge_filters(['pk == "a"', 'source == "b"']) == '(pk == "a") or (source == "b")'
    tricky = 'pk == "a" or pk != "b"'
    assert merge_filters([tricky, 'pk == "c"']) == f'({tricky}) or (pk == "c")'


class OrderRecorder(DeterministicFakeEmbedding):
    """Async-native fake that records the order of its calls."""

    order: list[str] = []

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        self.order.append(f"documents x{len(texts)}")
        await asyncio.sleep(0.02)
        return self.embed_documents(texts)

    async def aembed_query(self, text: str) -> list[float]:
        self.order.append("question")
        return self.embed_query(text)


async def test_questions_go_before_the_rest_of_an_ingest() -> None:
    inner = OrderRecorder(size=4, order=[])
    embeddings = CoalescingEmbeddings(inner, document_slice=16)
    ingest = asyncio.create_task(embeddings.aembed_documents([f"chunk {i}" for i in range(64)]))
    await asyncio.sleep(0.005)  # the first slice (20 ms) is being embedded
    question = await embeddings.aembed_query("a question")
    vectors = await ingest
    assert question == inner.embed_query("a question")
    assert vectors == inner.embed_documents([f"chunk {i}" for i in range(64)])
    assert inner.order[:2] == ["documents x16", "question"]
    assert inner.order.count("documents x16") == 4
