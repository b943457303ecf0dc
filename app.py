"""Chainlit hooks only: start-up and shutdown, sign-in, the history data layer, chat start
and resume, settings, message (questions, uploads, commands), example buttons, stop.

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
from chainlit.data.base import BaseDataLayer
from chainlit.types import ThreadDict

from accounts.datalayer import ChatDataLayer
from accounts.service import owned_by
from chains.errors import explain
from chains.memory import ChatMemory
from chains.options import SearchOptions
from core.errors import ConfigError
from core.knowledge import AccessScope
from core.logs import configure_logging
from core.settings import load_settings
from ui import history, render, runtime
from ui.admin import ADMIN_COMMANDS, parse_admin_command, run_admin_command
from ui.auth import sign_in, sign_in_from_header
from ui.chat_settings import options_from_settings, settings_widgets
from ui.commands import COMMANDS, parse_command, run_command
from ui.conversation import access_scope, answer_question
from ui.early_uploads import hold_early_uploads
from ui.http_security import secure_chainlit_server
from ui.page import serve_local_page
from ui.runtime import ChatServices
from ui.side_panel import open_side_panel_on_click_only
from ui.upload_refusals import report_refused_upload
from ui.uploads import ingest_uploads

logger = logging.getLogger("app")
EXIT_CONFIG = 2

# Like the hook decorators below, these register with Chainlit's server as it loads this
# module: the middleware (headers, CSP, inert served files) must be in place before the
# server builds its middleware stack, which happens before any start-up hook runs.
secure_chainlit_server()
hold_early_uploads()  # a file attached as the page opens waits for its session
serve_local_page()  # nothing from other hosts; no composer swapped away while typing
open_side_panel_on_click_only()  # Chainlit #2979: the panel opened by itself


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
    try:
        await runtime.start(settings)
    except Exception as exc:  # no history database: nobody could sign in
        sys.stderr.write(
            f"error: cannot open the chat-history database: {explain(exc, operator=True)}\n"
        )
        sys.stderr.flush()
        os._exit(EXIT_CONFIG)
    header = settings.auth_header
    if header is not None:
        # Registered here, from the settings: a proxy header is trusted only when asked.
        async def header_sign_in(headers: Any) -> cl.User | None:
            return await sign_in_from_header(runtime.current().accounts, header, headers)

        cl.header_auth_callback(header_sign_in)


@cl.data_layer
def data_layer() -> BaseDataLayer:
    """Chat history in the app's database (called by Chainlit after start-up)."""
    return ChatDataLayer(runtime.current().database)


@cl.password_auth_callback
async def password_sign_in(username: str, password: str) -> cl.User | None:
    return await sign_in(runtime.current().accounts, username, password)


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
    """What the user may list: their documents and the shared library."""
    return AccessScope.for_user(_user())


async def _removable() -> AccessScope:
    """What the user may remove: their own documents; the library too for an admin
    (looked up in the database, not taken from the sign-in token)."""
    user = _user()
    if await runtime.current().accounts.is_admin(user):
        return AccessScope.for_user(user)
    return owned_by(user)


async def _within_message_limit(services: ChatServices, text: str) -> bool:
    """Count the message against the user's rate and size limits; say so when it is over."""
    refusal = services.limits.refuse_message(_user(), text)
    if refusal is not None:
        await cl.ErrorMessage(content=refusal).send()
    return refusal is None


async def _within_model_limit(services: ChatServices, memory: ChatMemory) -> bool:
    """Reserve the chat-model requests a question may make (rewriting a follow-up, then
    answering) against the user's limit; say so when it is reached."""
    requests = 0 if services.resources.chat_model is None else 1 + bool(memory.messages())
    refusal = services.limits.refuse_model_requests(_user(), requests)
    if refusal is not None:
        await cl.ErrorMessage(content=refusal).send()
    return refusal is None


async def _offer_commands() -> None:
    admin = await runtime.current().accounts.is_admin(_user())
    await cl.context.emitter.set_commands(COMMANDS + (ADMIN_COMMANDS if admin else []))


@cl.on_chat_start
async def on_chat_start() -> None:
    _, options = _session_state()
    await cl.ChatSettings(settings_widgets(options)).send()
    await _offer_commands()
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


@cl.on_chat_resume
async def on_chat_resume(thread: ThreadDict) -> None:
    """Reopen a stored chat (Chainlit has checked it is the user's): the chain's memory
    and search settings from its answers, and their cited passages."""
    steps = list(thread.get("steps") or [])
    options = history.restore_options(steps)
    cl.user_session.set("options", options)
    cl.user_session.set("memory", history.restore_memory(steps))
    await cl.ChatSettings(settings_widgets(options)).send()
    await _offer_commands()
    await history.attach_citations(thread)


@cl.on_settings_update
async def on_settings_update(values: dict[str, Any]) -> None:
    _, current = _session_state()
    cl.user_session.set("options", options_from_settings(values, current))


@cl.on_message
async def on_message(message: cl.Message) -> None:
    services = await _services_or_tell_user()
    if services is None:
        return
    if not await _within_message_limit(services, message.content):
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
    admin_command = parse_admin_command(message.command, message.content)
    if admin_command is not None:
        try:
            reply = await run_admin_command(
                runtime.current().accounts, services.resources.kb, *admin_command, caller=_user()
            )
        except Exception as exc:
            await cl.ErrorMessage(content=str(explain(exc))).send()
        else:
            await cl.Message(content=reply).send()
        return
    command = parse_command(message.command, message.content)
    if command is not None:
        try:
            reply = await run_command(
                services.resources.kb,
                *command,
                scope=_visible(),
                removable=await _removable(),
                chat_id=_chat_id(),
            )
        except Exception as exc:
            await cl.ErrorMessage(content=str(explain(exc))).send()
        else:
            await cl.Message(content=reply).send()
        return
    if message.content.strip() and await _within_model_limit(services, memory):
        scope = access_scope(_user(), options, _chat_id())
        await answer_question(services, message.content, memory, options, scope)


@cl.action_callback(render.ASK_ACTION)
async def on_example_question(action: cl.Action) -> None:
    question = str(action.payload.get("question", ""))
    if not question:
        return
    await cl.Message(content=question, type="user_message").send()
    services = await _services_or_tell_user()
    if services is None:
        return
    if not await _within_message_limit(services, question):
        return
    memory, options = _session_state()
    if await _within_model_limit(services, memory):
        scope = access_scope(_user(), options, _chat_id())
        await answer_question(services, question, memory, options, scope)


@cl.on_window_message
async def on_window_message(data: Any) -> None:
    """The page reports a file the browser refused to attach (`ui.upload_refusals`)."""
    await report_refused_upload(data)


@cl.on_stop
async def on_stop() -> None:
    logger.info("answer stopped by the user")
