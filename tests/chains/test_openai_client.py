"""The real OpenAI client (ChatOpenAI) against a local stand-in of the OpenAI HTTP API,
healthy and faulty: a model that hangs, errors, stalls or drops the stream costs the
answer's time budget, then the answer is the retrieved passages with the reason."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from chains.model_budget import ModelLimits
from chains.rag import RagChain, RagInput, build_rag_chain
from chains.rag import rag_input as scoped_input
from chains.retriever import PassageRetriever
from core.knowledge import AccessScope
from core.providers import build_chat_model
from tests.conftest import PromptRecorder, make_settings
from tests.fakes import InMemoryKnowledgeBase
from tests.openai_standin import DEFAULT_ANSWER, OpenAIStandIn


def rag_input(question: str, **kwargs: Any) -> RagInput:
    """The chain's input, searching everything (these tests are about the model)."""
    return scoped_input(question, scope=AccessScope.everything(), **kwargs)


def chain_for(
    kb: InMemoryKnowledgeBase,
    server: OpenAIStandIn,
    tmp_path: Path,
    limits: ModelLimits | None = None,
    **settings: object,
) -> RagChain:
    model = build_chat_model(
        make_settings(tmp_path, openai_base_url=server.base_url, llm_model="standin", **settings)
    )
    assert model is not None
    return build_rag_chain(PassageRetriever(searcher=kb), model, limits)


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


LIMITS = ModelLimits(first_token=1.0, stall=1.0, total=2.5, retries=2, backoff=0.1)


async def answer_of(chain: RagChain, question: str = "alpha text about apples") -> Answered:
    """Run the chain; the answer's text, its model failure (None when the model answered)
    and how long it took."""
    started = time.monotonic()
    text, budget = "", None
    async for chunk in chain.astream(rag_input(question)):
        budget = chunk.get("budget", budget)
        text += chunk.get("answer", "")
    assert budget is not None
    failure = None if budget.failure is None else str(budget.failure)
    return Answered(text, failure, time.monotonic() - started)


class Answered(NamedTuple):
    text: str
    failure: str | None
    seconds: float


def fell_back(answer: Answered, reason: str) -> None:
    """The retrieval-only answer: the reason in plain words, then the cited passages."""
    assert answer.failure is not None and reason in answer.failure
    assert "The language model could not answer:" in answer.text
    assert "Here are the most relevant passages instead." in answer.text
    assert "[1] **a.txt**" in answer.text and "> alpha text about apples" in answer.text


async def test_a_model_that_hangs_before_answering_costs_the_budget_not_minutes(
    memory_kb: InMemoryKnowledgeBase, openai_standin: OpenAIStandIn, tmp_path: Path
) -> None:
    openai_standin.mode = "hang"
    chain = chain_for(memory_kb, openai_standin, tmp_path, limits=LIMITS)
    answer = await answer_of(chain)
    fell_back(answer, "did not answer within the 2.5 s allowed")
    assert LIMITS.total <= answer.seconds < LIMITS.total + 1
    assert len(openai_standin.requests) == 3  # 1 s, 1 s, then what is left of 2.5 s


async def test_server_errors_are_retried_within_one_budget(
    memory_kb: InMemoryKnowledgeBase, openai_standin: OpenAIStandIn, tmp_path: Path
) -> None:
    openai_standin.mode = "error"
    chain = chain_for(memory_kb, openai_standin, tmp_path, limits=LIMITS)
    answer = await answer_of(chain)
    fell_back(answer, "returned an error (HTTP 500)")
    assert len(openai_standin.requests) == 3  # one try + 2 retries, not more
    assert answer.seconds < 1


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("stall", "stopped sending its answer for 1 s"),
        ("drop", "broke off in the middle of its answer"),
    ],
)
async def test_a_stream_that_stalls_or_drops_keeps_its_start_and_adds_the_passages(
    memory_kb: InMemoryKnowledgeBase,
    openai_standin: OpenAIStandIn,
    tmp_path: Path,
    mode: str,
    reason: str,
) -> None:
    openai_standin.mode = mode
    chain = chain_for(memory_kb, openai_standin, tmp_path, limits=LIMITS)
    answer = await answer_of(chain)
    assert answer.failure is not None and reason in answer.failure
    assert answer.text.startswith("Similarity search returns\n\n*(The answer was cut off: The ")
    assert f"{reason}.)*" in answer.text
    assert "**The passages it was based on:**\n\n[1] **a.txt**" in answer.text
    assert len(openai_standin.requests) == 1  # part of the answer was shown: no retry
    assert answer.seconds < LIMITS.stall + 1


async def test_the_model_answers_again_once_it_is_healthy(
    memory_kb: InMemoryKnowledgeBase, openai_standin: OpenAIStandIn, tmp_path: Path
) -> None:
    chain = chain_for(memory_kb, openai_standin, tmp_path, limits=LIMITS)
    for mode in ("hang", "ok"):
        openai_standin.mode = mode
        answer = await answer_of(chain)
    assert answer == (DEFAULT_ANSWER, None, answer.seconds)


async def test_a_hung_follow_up_rewrite_shares_the_budget_with_the_answer(
    memory_kb: InMemoryKnowledgeBase, openai_standin: OpenAIStandIn, tmp_path: Path
) -> None:
    from langchain_core.messages import AIMessage, HumanMessage

    openai_standin.mode = "hang"
    chain = chain_for(memory_kb, openai_standin, tmp_path, limits=LIMITS)
    history = [HumanMessage("Tell me about apples"), AIMessage("They grow on trees [1].")]
    started = time.monotonic()
    text = ""
    async for chunk in chain.astream(rag_input("alpha text about apples", history=history)):
        text += chunk.get("answer", "")
    assert time.monotonic() - started < LIMITS.total + 1  # not once for each call
    assert "could not answer" in text and "[1] **a.txt**" in text
    assert len(openai_standin.requests) == 3  # the rewrite's attempts; the answer's none


async def test_unreachable_model_says_so(memory_kb: InMemoryKnowledgeBase, tmp_path: Path) -> None:
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
    fell_back(await answer_of(chain), "could not be reached")


async def test_a_failed_answer_logs_one_line_with_the_reason(
    memory_kb: InMemoryKnowledgeBase,
    openai_standin: OpenAIStandIn,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    openai_standin.mode = "error"
    chain = chain_for(memory_kb, openai_standin, tmp_path, limits=LIMITS)
    with caplog.at_level(logging.WARNING):
        await answer_of(chain)
    ours = [r for r in caplog.records if r.name.startswith(("chains", "core", "ui"))]
    assert [(r.levelname, r.getMessage()) for r in ours] == [
        (
            "WARNING",
            "language model failed, answering from the passages: The language model "
            "returned an error (HTTP 500). Try again shortly.",
        )
    ]
    assert all(r.exc_info is None for r in ours)


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
