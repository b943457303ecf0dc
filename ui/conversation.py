"""Answering one question in the chat: the retrieval step, the streamed answer, citations."""

from __future__ import annotations

import asyncio
import logging

import chainlit as cl

from chains.errors import explain
from chains.memory import ChatMemory
from chains.model_budget import ModelBudget
from chains.options import SearchOptions
from chains.rag import rag_input
from chains.retriever import Retrieval
from chains.safety import cap_question
from core.knowledge import AccessScope
from ui import history, render
from ui.runtime import ChatServices
from ui.streaming import SafeStream

logger = logging.getLogger(__name__)
WAITING_FOR_MODEL = "*Waiting for the language model…*"


def access_scope(user: str, options: SearchOptions, chat_id: str) -> AccessScope:
    """What a chat may search: the signed-in user's documents and the shared library, only
    this chat's uploads, or only the library; built from the session's identity, never from
    the browser."""
    if options.scope == "library":
        return AccessScope.library()
    scope = AccessScope.for_user(user)
    return scope.in_chat(chat_id) if options.scope == "chat" else scope


async def answer_question(
    services: ChatServices,
    text: str,
    memory: ChatMemory,
    options: SearchOptions,
    scope: AccessScope,
) -> None:
    """Retrieve (as a visible step), stream the sanitized answer, attach cited passages.

    With a model, the answer says it is waiting for the model until the first token
    arrives; if the model fails, the chain answers with the passages and the reason.
    Other failures become a clear message and the chat keeps working; stop ends the
    stream cleanly, keeping what was written so far.
    """
    question, capped = cap_question(text)
    if capped:
        await cl.Message(
            content=f"Your message was very long; only its first {len(question)} characters "
            "are used."
        ).send()

    step = cl.Step(name="Search the knowledge base", type="retrieval")
    step.input = question
    await step.send()
    answer = SafeStream(cl.Message(content=""))
    if services.resources.chat_model is not None:
        await answer.show_waiting(WAITING_FOR_MODEL)
    retrieval: Retrieval | None = None
    budget: ModelBudget | None = None
    try:
        stream = services.chain.astream(
            rag_input(question, history=memory.messages(), options=options, scope=scope)
        )
        async for chunk in stream:
            if (found := chunk.get("retrieval")) is not None:
                retrieval = found
                step.input = retrieval.query
                step.output = render.retrieval_summary(retrieval)
                await step.update()
            if token := chunk.get("answer"):
                await answer.push(token)
            budget = chunk.get("budget", budget)
    except asyncio.CancelledError:  # the user pressed stop
        await _finish(answer, retrieval, question, options, suffix="\n\n*(stopped)*")
        raise
    except Exception as exc:
        error = explain(exc)
        if retrieval is None:
            step.output = f"Failed: {error}"
            step.is_error = True
            await step.update()
        if answer.raw:
            await _finish(
                answer, retrieval, question, options, suffix="\n\n*(the answer was cut off)*"
            )
        else:
            await answer.discard()
        await cl.ErrorMessage(content=str(error)).send()
        return
    text = await _finish(answer, retrieval, question, options)
    if budget is None or budget.failure is None:  # memory keeps the model's answers only
        memory.add(question, text)


async def _finish(
    answer: SafeStream,
    retrieval: Retrieval | None,
    question: str,
    options: SearchOptions,
    suffix: str = "",
) -> str:
    """Send the answer with its cited passages, recording in its metadata what a resume
    and a rating need (`ui.history`)."""
    numbers: list[int] = []
    if retrieval is not None:
        numbers = render.cited_numbers(answer.text, len(retrieval.passages))
        answer.message.elements = render.citation_elements(retrieval.passages, numbers)  # type: ignore[assignment]
    answer.message.metadata = history.answer_metadata(question, options, retrieval, numbers)
    return await answer.finish(suffix)
