"""Chainlit hooks only: start-up and shutdown, chat start, settings, message (questions,
uploads, commands), example buttons, stop.

Run with `chainlit run app.py` (scripts/run.sh does, after seeding the knowledge base).
Importing this module only registers the hooks and the security middleware; the start-up
hook reads the settings and opens every resource.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import chainlit as cl

from chains.errors import explain
from chains.memory import ChatMemory
from chains.options import SearchOptions
from core.errors import ConfigError
from core.knowledge import AccessScope
from core.logs import configure_logging
from core.settings import load_settings
from ui import render, runtime
from ui.chat_settings import options_from_settings, settings_widgets
from ui.commands import COMMANDS, parse_command, run_command
from ui.conversation import access_scope, answer_question
from ui.http_security import secure_chainlit_server
from ui.runtime import ChatServices
from ui.uploads import ingest_uploads

logger = logging.getLogger("app")
EXIT_CONFIG = 2

# Like the hook decorators below, this registers with Chainlit's server as it loads this
# module: the middleware (headers, CSP, inert served files) must be in place before the
# server builds its middleware stack, which happens before any start-up hook runs.
secure_chainlit_server()


@cl.on_app_startup
async def start_app() -> None:
    """Read the settings and open the shared services before the first visitor arrives."""
    configure_logging()
    try:
        settings = load_settings()
    except ConfigError as exc:
        sys.stderr.write(f"error: {exc}\n")
        sys.stderr.flush()
        # Chainlit runs this hook inside the server's lifespan, where an exception only
        # becomes a traceback; a configuration error should end the process plainly.
        os._exit(EXIT_CONFIG)
    await runtime.start(settings)


@cl.on_app_shutdown
async def stop_app() -> None:
    await runtime.stop()


async def _services_or_tell_user() -> ChatServices | None:
    try:
        return await runtime.current().services()
    except Exception as exc:
        await cl.ErrorMessage(content=f"The app is not ready: {explain(exc)}").send()
        return None


def _session_state() -> tuple[ChatMemory, SearchOptions]:
    memory = cl.user_session.get("memory")
    if not isinstance(memory, ChatMemory):
        memory = ChatMemory()
        cl.user_session.set("memory", memory)
    options = cl.user_session.get("options")
    if not isinstance(options, SearchOptions):
        options = SearchOptions()
        cl.user_session.set("options", options)
    return memory, options


def _chat_id() -> str:
    return str(cl.context.session.thread_id)


def _user() -> str:
    """Who is asking, from the server-side session (never from the message)."""
    user = cl.user_session.get("user")
    return str(getattr(user, "identifier", None) or "anonymous")


def _visible() -> AccessScope:
    """What the user may list and remove: their documents and the shared library."""
    return AccessScope.for_user(_user())


@cl.on_chat_start
async def on_chat_start() -> None:
    _, options = _session_state()
    await cl.ChatSettings(settings_widgets(options)).send()
    await cl.context.emitter.set_commands(COMMANDS)
    services = await _services_or_tell_user()
    if services is None:
        return
    try:
        documents = await services.resources.kb.list_documents(_visible())
        chunks = await services.resources.kb.count(_visible())
    except Exception as exc:
        await cl.ErrorMessage(content=str(explain(exc))).send()
        return
    await cl.Message(
        content=render.welcome_text(documents, chunks, services.resources.model_name),
        actions=render.example_actions(),
    ).send()


@cl.on_settings_update
async def on_settings_update(values: dict[str, Any]) -> None:
    _, current = _session_state()
    cl.user_session.set("options", options_from_settings(values, current))


@cl.on_message
async def on_message(message: cl.Message) -> None:
    services = await _services_or_tell_user()
    if services is None:
        return
    settings = services.resources.settings
    files = [el for el in message.elements or [] if getattr(el, "path", None)]
    if files:  # ingest first, so a question in the same message can cite them
        await ingest_uploads(
            services.ingestor,
            files,
            max_files=settings.max_upload_files,
            owner=_user(),
            chat_id=_chat_id(),
        )
    memory, options = _session_state()
    command = parse_command(message.command, message.content)
    if command is not None:
        try:
            reply = await run_command(
                services.resources.kb, *command, scope=_visible(), chat_id=_chat_id()
            )
        except Exception as exc:
            await cl.ErrorMessage(content=str(explain(exc))).send()
        else:
            await cl.Message(content=reply).send()
        return
    if message.content.strip():
        scope = access_scope(_user(), options, _chat_id())
        await answer_question(services, message.content, memory, options, scope)


@cl.action_callback(render.ASK_ACTION)
async def on_example_question(action: cl.Action) -> None:
    question = str(action.payload.get("question", ""))
    if not question:
        return
    await cl.Message(content=question, type="user_message").send()
    services = await _services_or_tell_user()
    if services is not None:
        memory, options = _session_state()
        scope = access_scope(_user(), options, _chat_id())
        await answer_question(services, question, memory, options, scope)


@cl.on_stop
async def on_stop() -> None:
    logger.info("answer stopped by the user")
