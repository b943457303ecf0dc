"""Streaming an answer into a Chainlit message, sanitized as it grows."""

from __future__ import annotations

import time

import chainlit as cl

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

    async def show_waiting(self, text: str) -> None:
        """Show `text` (escaped by the caller) until the first token replaces it."""
        await self.message.stream_token(text, is_sequence=True)
        self._shown = text

    async def discard(self) -> None:
        """Take back a message that shows only the waiting text (nothing was written)."""
        if self._shown and not self.raw:
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
