"""The RAG chain over the in-memory fake knowledge base, with fake chat models."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage

from chains.formatting import EMPTY_KB_ANSWER, NO_MODEL_NOTICE, NOTHING_FOUND_ANSWER
from chains.options import SearchOptions
from chains.rag import RagChain, RagChunk, RagInput, build_rag_chain, rag_input
from chains.retriever import PassageRetriever, Retrieval
from core.knowledge import AccessScope
from tests.conftest import PromptRecorder
from tests.fakes import InMemoryKnowledgeBase

EVERYTHING = AccessScope.everything()


def fake_model(*replies: str) -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=iter([AIMessage(r) for r in replies]))


def chain_over(kb: InMemoryKnowledgeBase, model: GenericFakeChatModel | None) -> RagChain:
    return build_rag_chain(PassageRetriever(searcher=kb), model)


async def run(chain: RagChain, inputs: RagInput, **config: Any) -> tuple[Retrieval, list[str], str]:
    retrieval: Retrieval | None = None
    tokens: list[str] = []
    standalone = ""
    chunk: RagChunk
    async for chunk in chain.astream(inputs, config or None):  # type: ignore[arg-type]
        retrieval = chunk.get("retrieval", retrieval)
        standalone = chunk.get("standalone", standalone)
        if "answer" in chunk:
            tokens.append(chunk["answer"])
    assert retrieval is not None
    return retrieval, tokens, standalone


async def test_citations_number_the_retrieved_passages(memory_kb: InMemoryKnowledgeBase) -> None:
    recorder = PromptRecorder()
    chain = chain_over(memory_kb, fake_model("Grapes are fruit [1]."))
    retrieval, tokens, _ = await run(
        chain,
        rag_input("gamma text about grapes", options=SearchOptions(k=3), scope=EVERYTHING),
        callbacks=[recorder],
    )
    assert [p.n for p in retrieval.passages] == [1, 2, 3]
    first = retrieval.passages[0]
    assert (first.source, first.page, first.text) == ("c.pdf", 2, "gamma text about grapes")
    assert first.score == pytest.approx(1.0)
    scores = [p.score or 0.0 for p in retrieval.passages]
    assert scores == sorted(scores, reverse=True)
    assert len(tokens) > 1, "the answer must stream in several chunks"
    assert "".join(tokens) == "Grapes are fruit [1]."
    system = str(recorder.calls[0][0].content)
    assert '<passage n="1" source="c.pdf, page 2">\ngamma text about grapes\n</passage>' in system
    for p in retrieval.passages:
        assert f'<passage n="{p.n}" source="' in system and p.text in system


async def test_follow_up_is_condensed_before_retrieval(memory_kb: InMemoryKnowledgeBase) -> None:
    recorder = PromptRecorder()
    model = fake_model("beta text about bananas", "Bananas [1].")
    chain = chain_over(memory_kb, model)
    history = [HumanMessage("Tell me about bananas"), AIMessage("They are yellow [1].")]
    retrieval, tokens, standalone = await run(
        chain, rag_input("and what else?", history=history, scope=EVERYTHING), callbacks=[recorder]
    )
    assert standalone == "beta text about bananas"
    assert retrieval.query == "beta text about bananas"
    assert retrieval.passages[0].source == "b.txt"
    condense_call, answer_call = recorder.calls
    assert "Follow-up question: and what else?" in str(condense_call[-1].content)
    assert any("Tell me about bananas" in str(m.content) for m in condense_call)
    assert str(answer_call[-1].content) == "and what else?"
    assert "".join(tokens) == "Bananas [1]."


async def test_no_condensing_without_history(memory_kb: InMemoryKnowledgeBase) -> None:
    recorder = PromptRecorder()
    chain = chain_over(memory_kb, fake_model("Answer [1]."))
    _, _, standalone = await run(
        chain, rag_input("alpha text about apples", scope=EVERYTHING), callbacks=[recorder]
    )
    assert standalone == "alpha text about apples"
    assert len(recorder.calls) == 1


async def test_mmr_setting_and_scope_reach_the_knowledge_base(
    memory_kb: InMemoryKnowledgeBase,
) -> None:
    chain = chain_over(memory_kb, None)
    options = SearchOptions(search_type="mmr", k=2, fetch_k=4, lambda_mult=0.3)
    scope = AccessScope.for_user("alice")
    retrieval, _, _ = await run(
        chain, rag_input("alpha text about apples", options=options, scope=scope)
    )
    (request,) = memory_kb.searches
    assert request.query == "alpha text about apples" and request.scope == scope
    assert (request.mode, request.k, request.fetch_k, request.lambda_mult) == ("mmr", 2, 4, 0.3)
    assert retrieval.search_type == "mmr"
    assert len(retrieval.passages) == 2
    assert retrieval.passages[0].source == "a.txt"
    assert all(p.score is None for p in retrieval.passages)


async def test_retrieval_only_mode_shows_cited_passages(memory_kb: InMemoryKnowledgeBase) -> None:
    chain = chain_over(memory_kb, None)
    retrieval, tokens, _ = await run(chain, rag_input("alpha text about apples", scope=EVERYTHING))
    answer = "".join(tokens)
    assert answer.startswith(NO_MODEL_NOTICE)
    assert "OPENAI_API_KEY" in answer and "OPENAI_BASE_URL" in answer
    assert "[1] **a.txt** · score 1.00\n> alpha text about apples" in answer
    assert f"[{len(retrieval.passages)}]" in answer
    assert 'd "quoted".md' in answer


async def test_empty_knowledge_base_says_so() -> None:
    chain = chain_over(InMemoryKnowledgeBase(), fake_model("unused"))
    retrieval, tokens, _ = await run(chain, rag_input("anything", scope=EVERYTHING))
    assert retrieval.passages == []
    assert "".join(tokens) == EMPTY_KB_ANSWER


async def test_nothing_in_this_chat_is_not_an_empty_knowledge_base(
    memory_kb: InMemoryKnowledgeBase,
) -> None:
    chain = chain_over(memory_kb, fake_model("unused"))
    scope = AccessScope.for_user("carol").in_chat("a chat without uploads")
    retrieval, tokens, _ = await run(chain, rag_input("anything", scope=scope))
    assert retrieval.passages == []
    assert "".join(tokens) == NOTHING_FOUND_ANSWER
