"""The retriever over the in-memory fake knowledge base: a LangChain retriever that passes
the chat's options and access scope down, and numbers what it finds. (Filters and scopes
on real Milvus are tested in tests/core/store/test_knowledge_base.py.)"""

from __future__ import annotations

import pytest
from langchain_core.retrievers import BaseRetriever

from chains.options import SearchOptions
from chains.retriever import PassageRetriever
from core.knowledge import KEYWORD_UNAVAILABLE, AccessScope
from tests.fakes import InMemoryKnowledgeBase


async def test_it_is_a_langchain_retriever_passing_options_and_scope(
    memory_kb: InMemoryKnowledgeBase,
) -> None:
    retriever = PassageRetriever(searcher=memory_kb)
    assert isinstance(retriever, BaseRetriever)
    options = SearchOptions(search_type="mmr", k=2, fetch_k=3, lambda_mult=0.2, sources=("a.txt",))
    scope = AccessScope.for_user("alice")
    docs = await retriever.ainvoke("alpha text about apples", options=options, scope=scope)
    (request,) = memory_kb.searches
    assert (request.query, request.scope, request.mode) == ("alpha text about apples", scope, "mmr")
    assert (request.k, request.fetch_k, request.lambda_mult, request.sources) == (
        2,
        3,
        0.2,
        ("a.txt",),
    )
    assert [(d.metadata["n"], d.metadata["source"]) for d in docs] == [(1, "a.txt")]


async def test_passages_are_numbered_with_their_citation_facts(
    memory_kb: InMemoryKnowledgeBase,
) -> None:
    retrieval = await PassageRetriever(searcher=memory_kb).retrieve(
        "gamma text about grapes", SearchOptions(k=3), AccessScope.everything()
    )
    assert [p.n for p in retrieval.passages] == [1, 2, 3]
    first = retrieval.passages[0]
    assert (first.source, first.page, first.text, first.label) == (
        "c.pdf",
        2,
        "gamma text about grapes",
        "c.pdf, page 2",
    )
    assert first.score == pytest.approx(1.0)
    assert retrieval.milliseconds >= 0
    # the fake has no BM25 field: the default hybrid search ran as dense, and says so
    assert (retrieval.search_type, retrieval.notice) == ("dense", KEYWORD_UNAVAILABLE)


async def test_no_search_runs_without_a_scope(memory_kb: InMemoryKnowledgeBase) -> None:
    with pytest.raises(ValueError, match="access scope"):
        await PassageRetriever(searcher=memory_kb).ainvoke("alpha")
    assert memory_kb.searches == []
