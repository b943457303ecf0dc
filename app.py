"""Chainlit hooks only: chat start, settings, message, example buttons, stop.

Run with `chainlit run app.py` (scripts/run.sh does, after seeding the knowledge base).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import chainlit as cl

from core.errors import ConfigError
from core.settings import load_settings

# Validate the configuration before anything imports pymilvus (which rejects a bad
# MILVUS_URI with a traceback of its own).
try:
    SETTINGS = load_settings()
except ConfigError as config_error:
    sys.exit(f"error: {config_error}")

from chains.memory import ChatMemory  # noqa: E402
from chains.options import SearchOptions  # noqa: E402
from ui import render  # noqa: E402
from ui.chat_settings import options_from_settings, settings_widgets  # noqa: E402
from ui.conversation import answer_question  # noqa: E402
from ui.resources import AppResources, get_resources  # noqa: E402

logger = logging.getLogger("app")
MEMORY_TURNS = 6


async def _resources_or_tell_user() -> AppResources | None:
    from chains.errors import explain

    try:
        return await get_resources(SETTINGS)
    except Exception as exc:
        await cl.ErrorMessage(content=f"The app is not ready: {explain(exc)}").send()
        return None


@cl.on_app_startup
async def warm_up() -> None:
    """Load the embedding model and open the store before the first visitor arrives."""
    from chains.errors import explain

    try:
        await get_resources(SETTINGS)
    except Exception as exc:  # shown again, to the user, when a chat starts
        logger.error("start-up failed (will retry when a chat starts): %s", explain(exc))


def _session_state() -> tuple[ChatMemory, SearchOptions]:
    memory = cl.user_session.get("memory")
    if not isinstance(memory, ChatMemory):
        memory = ChatMemory(MEMORY_TURNS)
        cl.user_session.set("memory", memory)
    options = cl.user_session.get("options")
    if not isinstance(options, SearchOptions):
        options = SearchOptions()
        cl.user_session.set("options", options)
    return memory, options


@cl.on_chat_start
async def on_chat_start() -> None:
    _, options = _session_state()
    await cl.ChatSettings(settings_widgets(options)).send()
    resources = await _resources_or_tell_user()
    if resources is None:
        return
    try:
        documents = await resources.kb.list_documents()
        chunks = await resources.kb.count()
    except Exception as exc:
        from chains.errors import explain

        await cl.ErrorMessage(content=str(explain(exc))).send()
        return
    await cl.Message(
        content=render.welcome_text(documents, chunks, resources.model_name),
        actions=render.example_actions(),
    ).send()


@cl.on_settings_update
async def on_settings_update(values: dict[str, Any]) -> None:
    _, current = _session_state()
    cl.user_session.set("options", options_from_settings(values, current))


@cl.on_message
async def on_message(message: cl.Message) -> None:
    resources = await _resources_or_tell_user()
    if resources is not None:
        memory, options = _session_state()
        await answer_question(resources, message.content, memory, options)


@cl.action_callback(render.ASK_ACTION)
async def on_example_question(action: cl.Action) -> None:
    question = str(action.payload.get("question", ""))
    if not question:
        return
    await cl.Message(content=question, type="user_message").send()
    resources = await _resources_or_tell_user()
    if resources is not None:
        memory, options = _session_state()
        await answer_question(resources, question, memory, options)


@cl.on_stop
async def on_stop() -> None:
    logger.info("answer stopped by the user")
