"""The real OpenAI client (ChatOpenAI) against a local stand-in of the OpenAI HTTP API."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from langchain_core.embeddings import Embeddings

from chains.errors import explain
from chains.rag import RagChain, RagInput, build_rag_chain
from chains.rag import rag_input as scoped_input
from chains.retriever import PassageRetriever
from core.errors import ModelUnavailable
from core.knowledge import AccessScope
from core.providers import build_chat_model
from tests.conftest import PromptRecorder, make_settings
from tests.fakes import InMemoryKnowledgeBase
from tests.openai_standin import DEFAULT_ANSWER, OpenAIStandIn


def rag_input(question: str, **kwargs: Any) -> RagInput:
    """The chain's input, searching everything (these tests are about the model)."""
    return scoped_input(question, scope=AccessScope.everything(), **kwargs)


def chain_for(
    kb: InMemoryKnowledgeBase, server: OpenAIStandIn, tmp_path: Path, **settings: object
) -> RagChain:
    model = build_chat_model(
        make_settings(tmp_path, openai_base_url=server.base_url, llm_model="standin", **settings)
    )
    assert model is not None
    return build_rag_chain(PassageRetriever(searcher=kb), model)


async def test_answer_streams_through_the_real_client(
    memory_kb: InMemoryKnowledgeBase, openai_standin: OpenAIStandIn, tmp_path: Path
) -> None:
    chain = chain_for(memory_kb, openai_standin, tmp_path)
    tokens = [
        chunk["answer"]
        async for chunk in chain.astream(rag_input("alpha text about apples"))
        if "answer" in chunk
    ]
    assert len(tokens) > 5
    assert "".join(tokens) == DEFAULT_ANSWER
    request = openai_standin.requests[-1]
    assert request["stream"] is True and request["model"] == "standin"
    assert '<passage n="1" source="a.txt">' in request["messages"][0]["content"]


async def test_server_errors_are_retried_a_bounded_number_of_times(
    memory_kb: InMemoryKnowledgeBase, openai_standin: OpenAIStandIn, tmp_path: Path
) -> None:
    openai_standin.mode = "error"
    chain = chain_for(memory_kb, openai_standin, tmp_path, openai_max_retries=2)
    with pytest.raises(Exception) as info:
        async for _ in chain.astream(rag_input("alpha text about apples")):
            pass
    assert len(openai_standin.requests) == 3  # one try + max_retries, not more
    error = explain(info.value)
    assert isinstance(error, ModelUnavailable)
    assert "HTTP 500" in str(error)


async def test_a_hanging_model_times_out_with_a_clear_message(
    memory_kb: InMemoryKnowledgeBase, openai_standin: OpenAIStandIn, tmp_path: Path
) -> None:
    openai_standin.mode = "slow"
    chain = chain_for(memory_kb, openai_standin, tmp_path, openai_timeout=0.5, openai_max_retries=1)
    started = time.monotonic()
    with pytest.raises(Exception) as info:
        async for _ in chain.astream(rag_input("alpha text about apples")):
            pass
    assert time.monotonic() - started < 10
    assert len(openai_standin.requests) == 2
    assert "did not answer in time" in str(explain(info.value))


async def test_unreachable_model_says_so(
    memory_kb: InMemoryKnowledgeBase, tmp_path: Path, fake_embeddings: Embeddings
) -> None:
    from tests.conftest import free_port

    model = build_chat_model(
        make_settings(
            tmp_path,
            openai_base_url=f"http://127.0.0.1:{free_port()}/v1",
            openai_max_retries=0,
        )
    )
    assert model is not None
    chain = build_rag_chain(PassageRetriever(searcher=memory_kb), model)
    with pytest.raises(Exception) as info:
        async for _ in chain.astream(rag_input("alpha text about apples")):
            pass
    assert "could not be reached" in str(explain(info.value))


async def test_condense_goes_through_the_client_too(
    memory_kb: InMemoryKnowledgeBase, openai_standin: OpenAIStandIn, tmp_path: Path
) -> None:
    from langchain_core.messages import AIMessage, HumanMessage

    chain = chain_for(memory_kb, openai_standin, tmp_path)
    recorder = PromptRecorder()
    history = [HumanMessage("Tell me about apples"), AIMessage("They grow on trees [1].")]
    standalone = ""
    async for chunk in chain.astream(
        rag_input("alpha text about apples", history=history), {"callbacks": [recorder]}
    ):
        standalone = chunk.get("standalone", standalone)
    assert standalone == "alpha text about apples (standalone)"
    assert [r["stream"] for r in openai_standin.requests] == [True, True]
