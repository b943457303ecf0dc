"""Streaming an answer into a Chainlit message, sanitized as it grows."""

from __future__ import annotations

import asyncio
import time

import chainlit as cl
from chainlit.data import get_data_layer
from chainlit.utils import utc_now

from chains.safety import StreamSanitizer, sanitize_markdown

FLUSH_SECONDS = 0.04


class SafeStream:
    """Streams tokens into `message`, always showing the sanitized text so far.

    Each update replaces the content (`is_sequence=True`) with the sanitized whole text
    (`StreamSanitizer`, which re-parses only the last block), so an image or link only
    becomes active Markdown once complete, and is removed by then. Updates are coalesced
    to one per `FLUSH_SECONDS`. The final text is sanitized in one piece.
    """

    def __init__(self, message: cl.Message) -> None:
        self.message = message
        self.raw = ""
        self._shown = ""
        self._sanitize = StreamSanitizer()
        self._last_flush = 0.0
        self._stored: asyncio.Task[None] | None = None

    def keep_in_history(self, text: str) -> None:
        """Store the message in the chat's history now, reading `text` (escaped by the
        caller), so that a chat reopened after the app stopped mid-answer says so; `finish`
        overwrites it (same step id) and `discard` deletes it.

        Chainlit stores a streamed message only when it is sent whole, so an answer being
        written when the process died left no trace. Not awaited, like Chainlit's own
        writes: one step's writes run in the order they were started
        (`accounts.datalayer`).
        """
        data_layer = get_data_layer()
        if data_layer is None:
            return
        if not self.message.created_at:
            self.message.created_at = utc_now()
        step = {**self.message.to_dict(), "output": text}
        self._stored = asyncio.get_running_loop().create_task(data_layer.create_step(step))

    async def show_waiting(self, text: str) -> None:
        """Show `text` (escaped by the caller) until the first token replaces it."""
        await self.message.stream_token(text, is_sequence=True)
        self._shown = text

    async def discard(self) -> None:
        """Take back a message that nothing was written into (it may show the waiting
        text, and be stored by `keep_in_history`)."""
        if (self._shown or self._stored is not None) and not self.raw:
            await self.message.remove()

    async def push(self, token: str) -> None:
        self.raw += token
        if time.monotonic() - self._last_flush >= FLUSH_SECONDS:
            await self._flush()

    async def _flush(self) -> None:
        text = self._sanitize(self.raw)
        if text != self._shown:
            await self.message.stream_token(text, is_sequence=True)
            self._shown = text
        self._last_flush = time.monotonic()

    @property
    def text(self) -> str:
        return sanitize_markdown(self.raw)

    async def finish(self, suffix: str = "") -> str:
        """Send the final, sanitized message (with its elements); returns its text."""
        self.message.content = self.text + suffix
        await self.message.send()
        return self.message.content
