"""Abuse limits: messages per user per minute, chat-model requests per user per minute,
and over-long messages answered instead of dropped.

Chainlit answers every message it receives: 100 messages in a burst from one socket made
127 model requests. Each limit here is a sliding one-minute window per signed-in user
(shared by all of that user's chats), and a refusal says what the limit is and when to
try again.

Socket.IO (engine.io) closes the connection on a frame over `max_http_buffer_size`
(1 MB by default) without a word. The frame limit is raised to what the web server
accepts anyway (uvicorn's 16 MiB WebSocket limit), and a message's text is cut to one
character past `MAX_MESSAGE_CHARS` before Chainlit stores or handles it, so the handler
can answer "too long" instead.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from core.settings import Settings

WINDOW_SECONDS = 60.0
SOCKET_FRAME_BYTES = 16 * 1024 * 1024  # uvicorn's default ws_max_size
_SWEEP_KEYS = 10_000


@dataclass
class SlidingWindow:
    """At most `limit` events per key in any `window` seconds."""

    limit: int
    window: float = WINDOW_SECONDS
    clock: Callable[[], float] = time.monotonic
    _events: dict[str, deque[float]] = field(default_factory=dict, repr=False)

    def take(self, key: str, count: int = 1) -> float:
        """Record `count` events for `key` and return 0, or record nothing and return the
        seconds until `count` more would fit."""
        now = self.clock()
        if len(self._events) > _SWEEP_KEYS:
            self._sweep(now)
        events = self._events.setdefault(key, deque())
        while events and events[0] <= now - self.window:
            events.popleft()
        if len(events) + count > self.limit:
            if count > self.limit:
                return self.window
            return events[len(events) + count - self.limit - 1] + self.window - now
        events.extend([now] * count)
        return 0.0

    def _sweep(self, now: float) -> None:
        for key in [k for k, e in self._events.items() if not e or e[-1] <= now - self.window]:
            del self._events[key]


@dataclass
class AbuseLimits:
    """The process-wide limits (one instance, shared by every chat)."""

    messages: SlidingWindow
    model_requests: SlidingWindow
    max_message_chars: int

    @classmethod
    def from_settings(cls, settings: Settings) -> AbuseLimits:
        return cls(
            messages=SlidingWindow(settings.messages_per_minute),
            model_requests=SlidingWindow(settings.model_requests_per_minute),
            max_message_chars=settings.max_message_chars,
        )

    def refuse_message(self, user: str, text: str) -> str | None:
        """Why this message is not handled (None: handle it)."""
        if len(text) > self.max_message_chars:
            return (
                f"Your message is over the limit of {self.max_message_chars:,} characters, so "
                "it was not handled. Send a shorter one, or attach long text as a file."
            )
        wait = self.messages.take(user)
        if wait:
            return (
                f"You are sending messages too quickly (at most {self.messages.limit} a "
                f"minute). Try again in {_seconds(wait)}."
            )
        return None

    def refuse_model_requests(self, user: str, count: int) -> str | None:
        """Why a question that may make `count` chat-model requests is not answered."""
        if count == 0:
            return None
        wait = self.model_requests.take(user, count)
        if wait:
            return (
                f"You have reached the limit of {self.model_requests.limit} model requests a "
                f"minute. Try again in {_seconds(wait)}."
            )
        return None


def _seconds(wait: float) -> str:
    seconds = max(1, math.ceil(wait))
    return f"{seconds} second{'s' if seconds != 1 else ''}"


Handler = Callable[[str, Any], Awaitable[Any]]


def guard_socket_messages(sio: Any, max_chars: int) -> None:
    """Accept frames up to `SOCKET_FRAME_BYTES`, and cut an incoming message's text to
    `max_chars + 1` characters before Chainlit stores or handles it (the handler then
    sees it is over the limit and says so). Call before the server starts serving."""
    sio.eio.max_http_buffer_size = SOCKET_FRAME_BYTES
    handlers: dict[str, Handler] = sio.handlers["/"]
    for event in ("client_message", "edit_message"):
        original = getattr(handlers[event], "original", handlers[event])

        def make(original: Handler) -> Handler:
            async def guarded(sid: str, payload: Any) -> Any:
                message = payload.get("message") if isinstance(payload, dict) else None
                text = message.get("output") if isinstance(message, dict) else None
                if isinstance(text, str) and len(text) > max_chars:
                    message["output"] = text[: max_chars + 1]  # type: ignore[index]
                return await original(sid, payload)

            guarded.original = original  # type: ignore[attr-defined]
            return guarded

        handlers[event] = make(original)
