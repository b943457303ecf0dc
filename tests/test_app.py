"""The app's message handler under abuse: message and model-request limits per user,
over-long messages answered, not dropped."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import chainlit.data as chainlit_data
import pytest
from chainlit.config import config as chainlit_config
from chainlit.message import Message
from chainlit.server import app as server_app
from chainlit.server import sio
from chainlit.user import User
from chainlit.user_session import user_session
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from accounts.database import Database
from core.resources import Resources
from core.settings import Settings
from tests.conftest import make_settings
from tests.fakes import InMemoryKnowledgeBase
from tests.ui.conftest import RecordingEmitter
from ui.abuse import SOCKET_FRAME_BYTES, guard_socket_messages
from ui.runtime import AppRuntime, ChatServices


class CountingModel(GenericFakeChatModel):
    """Answers every request with "Tea [1]." and counts the requests."""

    requests: int = 0

    async def _astream(self, *args: Any, **kwargs: Any) -> Any:
        self.requests += 1
        async for chunk in super()._astream(*args, **kwargs):
            yield chunk


def _model() -> CountingModel:
    return CountingModel(messages=iter(lambda: AIMessage(content="Tea [1]."), None))


async def _runtime(settings: Settings, model: CountingModel | None) -> AppRuntime:
    kb = InMemoryKnowledgeBase()
    await kb.add_chunks([])
    runtime = AppRuntime(settings, await Database.open(settings))
    runtime._services = ChatServices.build(
        Resources(settings=settings, embeddings=kb.embeddings, kb=kb, chat_model=model)
    )
    return runtime


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """app.py, imported with what it registers in Chainlit (hooks, middleware, the
    socket's Origin check) undone after the test; no chat-history persistence."""
    monkeypatch.setattr(chainlit_config, "code", chainlit_config.code.model_copy(deep=True))
    monkeypatch.setattr(server_app, "user_middleware", list(server_app.user_middleware))
    monkeypatch.setattr(sio.eio, "cors_allowed_origins", sio.eio.cors_allowed_origins)
    monkeypatch.setattr(chainlit_data, "_data_layer", None)
    monkeypatch.setattr(chainlit_data, "_data_layer_initialized", True)
    return importlib.import_module("app")


@pytest.fixture
async def running(
    app: ModuleType,
    tmp_path: Path,
    chainlit_events: RecordingEmitter,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[RecordingEmitter, CountingModel]]:
    """The app's runtime with a fake model and small limits, and a signed-in alice."""
    settings = make_settings(
        tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}",
        messages_per_minute=5,
        model_requests_per_minute=3,
        max_message_chars=1000,
    )
    model = _model()
    runtime = await _runtime(settings, model)
    monkeypatch.setattr(server_app.state, "rag_chat", runtime, raising=False)
    user_session.set("user", User(identifier="alice"))  # type: ignore[no-untyped-call]
    try:
        yield chainlit_events, model
    finally:
        await runtime.database.close()


def _errors(events: RecordingEmitter) -> list[str]:
    return [m["output"] for m in events.of("new_message") if m.get("isError")]


def _ask(text: str) -> Message:
    return Message(content=text, type="user_message")


async def test_a_burst_of_messages_is_limited_per_user(
    app: ModuleType, running: tuple[RecordingEmitter, CountingModel]
) -> None:
    events, model = running
    model.requests = 0
    for _ in range(8):
        await app.on_message(_ask("/docs"))  # a command: no model request
    errors = _errors(events)
    assert len(errors) == 3  # 5 a minute were handled, the other 3 refused
    assert errors[0].startswith("You are sending messages too quickly (at most 5 a minute).")
    assert "Try again in 60 seconds" in errors[0]


async def test_model_requests_are_capped_per_minute(
    app: ModuleType, running: tuple[RecordingEmitter, CountingModel]
) -> None:
    events, model = running
    for _ in range(4):
        await app.on_message(_ask("What about tea?"))
    # first question: 1 request (answer); then follow-ups need 2 (rewrite + answer)
    assert model.requests <= 3
    errors = _errors(events)
    assert errors and errors[-1].startswith(
        "You have reached the limit of 3 model requests a minute."
    )


async def test_an_over_long_message_gets_a_reply(
    app: ModuleType, running: tuple[RecordingEmitter, CountingModel]
) -> None:
    events, model = running
    await app.on_message(_ask("x" * 1001))
    assert _errors(events) == [
        "Your message is over the limit of 1,000 characters, so it was not handled. Send a "
        "shorter one, or attach long text as a file."
    ]
    assert model.requests == 0


async def test_the_socket_accepts_big_frames_and_cuts_the_text_before_chainlit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[Any] = []

    async def chainlit_handler(sid: str, payload: Any) -> None:
        seen.append(payload)

    monkeypatch.setattr(sio.eio, "max_http_buffer_size", sio.eio.max_http_buffer_size)
    monkeypatch.setitem(sio.handlers["/"], "client_message", chainlit_handler)
    monkeypatch.setitem(sio.handlers["/"], "edit_message", chainlit_handler)
    guard_socket_messages(sio, 1000)
    guard_socket_messages(sio, 1000)  # installing twice does not wrap twice
    assert sio.eio.max_http_buffer_size == SOCKET_FRAME_BYTES
    await sio.handlers["/"]["client_message"]("sid", {"message": {"output": "y" * 1_000_000}})
    await sio.handlers["/"]["edit_message"]("sid", {"message": {"output": "short"}})
    assert [len(p["message"]["output"]) for p in seen] == [1001, 5]
