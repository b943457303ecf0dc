"""Source filters on both backends: values are literals, never code (one suite, two backends)."""

from __future__ import annotations

import uuid

import pytest
import pytest_asyncio
from core.filters import MilvusFilter

from chains.options import SearchOptions
from chains.retriever import PassageRetriever
from core.store import KnowledgeBase
from tests.conftest import PASSAGES, make_settings

INJECTIONS = [
    'x" or source != "',
    "x' or source != '",
    'x" || source like "%',
    'a.txt" or chunk >= 0 or source == "',
    "\\",
    '"',
]


class RetrieverSuite:
    """The retrieval and filter tests, run once per backend: each subclass provides a
    `kb` fixture holding the `PASSAGES` (see tests/conftest.py)."""

    __test__ = False

    async def sources_for(self, kb: KnowledgeBase, *sources: str, mmr: bool = False) -> set[str]:
        options = SearchOptions(
            k=10, fetch_k=10, sources=sources, search_type="mmr" if mmr else "similarity"
        )
        retrieval = await PassageRetriever(kb).retrieve("alpha text about apples", options)
        return {p.source for p in retrieval.passages}

    async def test_no_filter_finds_everything(self, kb: KnowledgeBase) -> None:
        assert await self.sources_for(kb) == {s["source"] for _, s in PASSAGES}

    async def test_filter_by_one_and_several_sources(self, kb: KnowledgeBase) -> None:
        assert await self.sources_for(kb, "b.txt") == {"b.txt"}
        assert await self.sources_for(kb, "b.txt", "c.pdf", mmr=True) == {"b.txt", "c.pdf"}

    async def test_quotes_in_a_real_source_name_match_exactly(self, kb: KnowledgeBase) -> None:
        assert await self.sources_for(kb, 'd "quoted".md') == {'d "quoted".md'}

    @pytest.mark.parametrize("attack", INJECTIONS)
    async def test_injection_attempts_match_nothing(self, kb: KnowledgeBase, attack: str) -> None:
        assert await self.sources_for(kb, attack) == set()
        assert await self.sources_for(kb, attack, mmr=True) == set()
        assert await self.sources_for(kb, attack, "nothing-else") == set()

    async def test_chat_scope_holds_under_injection(self, kb: KnowledgeBase) -> None:
        options = SearchOptions(k=10, fetch_k=10)
        retriever = PassageRetriever(kb)
        scope = MilvusFilter.equals("chat_id", "chat-A")
        found = await retriever.retrieve("beta text about bananas", options, scope)
        assert {p.source for p in found.passages} == {"a.txt"}
        for attack in INJECTIONS + ['chat-A" or chat_id != "']:
            attacked = options.model_copy(update={"sources": (attack,)})
            found = await retriever.retrieve("beta text about bananas", attacked, scope)
            assert found.passages == []
            forged = MilvusFilter.equals("chat_id", attack)
            assert (await retriever.retrieve("beta", options, forged)).passages == []

    async def test_injection_in_a_delete_removes_nothing(self, kb: KnowledgeBase) -> None:
        before = await kb.count()
        for attack in INJECTIONS:
            await kb.delete(MilvusFilter.equals("source", attack))
        assert await kb.count() == before


async def _seed(kb: KnowledgeBase) -> KnowledgeBase:
    texts = [t for t, _ in PASSAGES]
    await kb.add_texts(texts, [dict(m) for _, m in PASSAGES], [f"id{i}" for i in range(4)])
    return kb


@pytest.mark.integration
class TestRetrieverOnMilvusLite(RetrieverSuite):
    __test__ = True

    @pytest.fixture
    async def kb(self, seeded_kb: KnowledgeBase) -> KnowledgeBase:
        assert not seeded_kb.templating
        return seeded_kb


@pytest.mark.server
@pytest.mark.asyncio(loop_scope="class")
class TestRetrieverOnMilvusServer(RetrieverSuite):
    """One collection for the class (creating one on a server takes seconds)."""

    __test__ = True

    @pytest_asyncio.fixture(scope="class", loop_scope="class")
    async def kb(
        self, milvus_server_uri: str, tmp_path_factory: pytest.TempPathFactory
    ) -> KnowledgeBase:
        from langchain_core.embeddings import DeterministicFakeEmbedding

        settings = make_settings(
            tmp_path_factory.mktemp("server"),
            milvus_uri=milvus_server_uri,
            milvus_collection=f"t_{uuid.uuid4().hex}",
        )
        kb = await KnowledgeBase.open(settings, DeterministicFakeEmbedding(size=16))
        await _seed(kb)
        await kb.flush()
        return kb
