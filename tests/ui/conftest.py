"""A recording Chainlit context, so UI code runs for real without a browser.

This follows Chainlit's own tests: set `chainlit.context.context_var` with a session and
an emitter that records what would go over the websocket.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from chainlit.config import FILES_DIRECTORY
from chainlit.context import ChainlitContext, context_var
from chainlit.emitter import BaseChainlitEmitter
from chainlit.session import HTTPSession


class RecordingEmitter(BaseChainlitEmitter):
    def __init__(self, session: HTTPSession) -> None:
        super().__init__(session)
        self.events: list[tuple[str, Any]] = []
        self.streaming = asyncio.Event()

    async def emit(self, event: str, data: Any) -> None:
        self.events.append((event, data))

    async def send_step(self, step_dict: Any) -> None:
        self.events.append(("new_message", step_dict))

    async def update_step(self, step_dict: Any) -> None:
        self.events.append(("update_message", step_dict))

    async def stream_start(self, step_dict: Any) -> None:
        self.events.append(("stream_start", step_dict))
        self.streaming.set()

    async def send_token(
        self, id: str, token: str, is_sequence: bool = False, is_input: bool = False
    ) -> None:
        self.events.append(("stream_token", token))

    async def send_element(self, element_dict: Any) -> None:
        self.events.append(("element", element_dict))

    def of(self, kind: str) -> list[Any]:
        return [data for event, data in self.events if event == kind]

    def streamed_texts(self) -> list[str]:
        """Every version of a message's text the browser was sent while streaming."""
        return [
            data["output"] if event == "stream_start" else data
            for event, data in self.events
            if event in ("stream_start", "stream_token")
        ]


@pytest.fixture
async def chainlit_events() -> AsyncIterator[RecordingEmitter]:
    FILES_DIRECTORY.mkdir(parents=True, exist_ok=True)  # a stopped `chainlit run` removes it
    session = HTTPSession(id="test-session", client_type="webapp", thread_id="thread-1")
    emitter = RecordingEmitter(session)
    token = context_var.set(ChainlitContext(session, emitter=emitter))
    try:
        yield emitter
    finally:
        context_var.reset(token)
