"""What a chat keeps in the history database so it can be resumed and rated.

Each answer's step metadata records the question, the search settings and the passages
shown (the numbers it cited among them): enough to re-render its citations after a
resume (Chainlit keeps no element without a storage client) and for a later evaluation
of the thumbs up / down given to it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import chainlit as cl
from chainlit.config import config as chainlit_config
from chainlit.types import ThreadDict
from pydantic import ValidationError

from chains.memory import ChatMemory
from chains.options import SearchOptions
from chains.retriever import Passage, Retrieval
from ui import render

ANSWER_KEY = "rag_answer"


def answer_metadata(
    question: str, options: SearchOptions, retrieval: Retrieval | None, cited: Sequence[int]
) -> dict[str, Any]:
    passages = [asdict(p) for p in retrieval.passages] if retrieval is not None else []
    return {
        ANSWER_KEY: {
            "question": question,
            "options": options.model_dump(mode="json"),
            "passages": passages,
            "cited": list(cited),
        }
    }


def _metadata(step: Mapping[str, Any]) -> dict[str, Any]:
    raw = step.get("metadata") or {}
    if isinstance(raw, str):  # SQLite hands JSON columns back as text
        raw = json.loads(raw)
    record = raw.get(ANSWER_KEY) if isinstance(raw, dict) else None
    return record if isinstance(record, dict) else {}


def answers(steps: Sequence[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], dict[str, Any]]]:
    """The chat's answers in order, each with its record (assistant messages that answered
    a question; welcomes, upload reports and command replies have none)."""
    ordered = sorted(steps, key=lambda s: str(s.get("createdAt") or ""))
    found = []
    for step in ordered:
        if step.get("type") == "assistant_message" and (record := _metadata(step)):
            found.append((step, record))
    return found


def restore_memory(steps: Sequence[Mapping[str, Any]]) -> ChatMemory:
    """The chain's memory, rebuilt from the stored answers and their questions."""
    memory = ChatMemory()
    for step, record in answers(steps):
        memory.add(str(record.get("question", "")), str(step.get("output") or ""))
    return memory


def restore_options(steps: Sequence[Mapping[str, Any]]) -> SearchOptions:
    """The chat's search settings: the last answer's, which the settings panel held then."""
    found = answers(steps)
    if found:
        try:
            return SearchOptions(**found[-1][1].get("options", {}))
        except (ValidationError, TypeError):
            pass
    return SearchOptions()


async def attach_citations(thread: ThreadDict) -> None:
    """Add each resumed answer's cited passages to the thread's elements, so "[n]" opens
    the passage again.

    They go into the thread Chainlit is about to send to the browser, not out as element
    events: Chainlit 2.12 sends the thread after `on_chat_resume` returns, and the browser
    then replaces the elements it holds with the thread's, dropping any sent before.
    """
    elements = list(thread.get("elements") or [])
    session = cl.context.session
    root_path = chainlit_config.run.root_path.rstrip("/")
    for step, record in answers(list(thread.get("steps") or [])):
        try:
            passages = [Passage(**p) for p in record.get("passages", [])]
        except TypeError:
            continue
        numbers = [n for n in record.get("cited", []) if any(p.n == n for p in passages)]
        for element in render.citation_elements(passages, numbers):
            # Kept in this session's files, as Chainlit keeps an element it sends itself.
            stored = await session.persist_file(
                name=element.name, mime="text/plain", content=str(element.content)
            )
            element.chainlit_key = stored["id"]
            # The browser makes this URL itself only for elements it receives as events.
            element.url = f"{root_path}/project/file/{stored['id']}?session_id={session.id}"
            element.mime = "text/plain"
            element.for_id = str(step["id"])
            element.thread_id = str(thread.get("id") or "")
            elements.append(element.to_dict())
    thread["elements"] = elements
