"""Chainlit hooks only: chat start, settings, message (questions, uploads, commands),
example buttons, stop.

Run with `chainlit run app.py` (scripts/run.sh does, after seeding the knowledge base).
"""

from __future__ import annotations

import logging
import math
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

from chains.errors import explain  # noqa: E402
from chains.memory import ChatMemory  # noqa: E402
from chains.options import SearchOptions  # noqa: E402
from ui import render  # noqa: E402
from ui.chat_settings import options_from_settings, settings_widgets  # noqa: E402
from ui.commands import COMMANDS, parse_command, run_command  # noqa: E402
from ui.conversation import answer_question  # noqa: E402
from ui.http_security import secure_chainlit_server  # noqa: E402
from ui.resources import AppResources, get_resources  # noqa: E402
from ui.uploads import allow_empty_uploads, ingest_uploads  # noqa: E402

logger = logging.getLogger("app")
MEMORY_TURNS = 6


def _configure_uploads() -> None:
    """Upload limits come from the settings (MAX_FILE_MB, MAX_UPLOAD_FILES), so the browser,
    Chainlit's upload endpoint and the ingest pipeline all enforce the same numbers."""
    from chainlit.config import config

    upload = config.features.spontaneous_file_upload
    if upload is not None:
        upload.max_size_mb = math.ceil(SETTINGS.max_file_mb)
        upload.max_files = SETTINGS.max_upload_files
    allow_empty_uploads()


_configure_uploads()
secure_chainlit_server()  # headers, CSP, inert served files, socket Origin check


async def _resources_or_tell_user() -> AppResources | None:
    try:
        return await get_resources(SETTINGS)
    except Exception as exc:
        await cl.ErrorMessage(content=f"The app is not ready: {explain(exc)}").send()
        return None


@cl.on_app_startup
async def warm_up() -> None:
    """Load the embedding model and open the store before the first visitor arrives."""
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


def _chat_id() -> str:
    return str(cl.context.session.thread_id)


def _uploader() -> str:
    user = cl.user_session.get("user")
    return str(getattr(user, "identifier", None) or "anonymous")


@cl.on_chat_start
async def on_chat_start() -> None:
    _, options = _session_state()
    await cl.ChatSettings(settings_widgets(options)).send()
    await cl.context.emitter.set_commands(COMMANDS)
    resources = await _resources_or_tell_user()
    if resources is None:
        return
    try:
        documents = await resources.kb.list_documents()
        chunks = await resources.kb.count()
    except Exception as exc:
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
    if resources is None:
        return
    files = [el for el in message.elements or [] if getattr(el, "path", None)]
    if files:  # ingest first, so a question in the same message can cite them
        await ingest_uploads(
            resources.ingestor,
            files,
            max_files=SETTINGS.max_upload_files,
            uploaded_by=_uploader(),
            chat_id=_chat_id(),
        )
    command = parse_command(message.command, message.content)
    if command is not None:
        try:
            reply = await run_command(resources.kb, *command, chat_id=_chat_id())
        except Exception as exc:
            await cl.ErrorMessage(content=str(explain(exc))).send()
        else:
            await cl.Message(content=reply).send()
        return
    if message.content.strip():
        memory, options = _session_state()
        await answer_question(resources, message.content, memory, options, _chat_id())


@cl.action_callback(render.ASK_ACTION)
async def on_example_question(action: cl.Action) -> None:
    question = str(action.payload.get("question", ""))
    if not question:
        return
    await cl.Message(content=question, type="user_message").send()
    resources = await _resources_or_tell_user()
    if resources is not None:
        memory, options = _session_state()
        await answer_question(resources, question, memory, options, _chat_id())


@cl.on_stop
async def on_stop() -> None:
    logger.info("answer stopped by the user")
