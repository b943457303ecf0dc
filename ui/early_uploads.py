"""Files attached as the page opens are kept: an upload waits for its chat session.

The browser makes up a session id, opens the socket with it and may upload a file with it
before the server has created that session (the page has just loaded, or the socket is
reconnecting). Chainlit 2.12 then answers `POST /project/file` with 404 "Session not
found": the attachment vanishes after a toast and the message goes without it. This
middleware holds such an upload until the session exists (at most `WAIT_SECONDS`), then
lets Chainlit handle it as usual (its sign-in and ownership checks included).
"""

from __future__ import annotations

import asyncio
import math
from urllib.parse import parse_qs

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

WAIT_SECONDS = 20.0
POLL_SECONDS = 0.05
UPLOAD_PATH = "/project/file"


def hold_early_uploads() -> None:
    """Install the middleware on Chainlit's server (before it serves its first request)."""
    from chainlit.server import app

    if WaitForSession not in {getattr(m, "cls", None) for m in app.user_middleware}:
        app.user_middleware.append(Middleware(WaitForSession))


class WaitForSession:
    """ASGI middleware: an upload for a session not yet created waits for it."""

    def __init__(self, app: ASGIApp, wait_seconds: float = WAIT_SECONDS) -> None:
        self.app = app
        self.wait_seconds = wait_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and _is_upload(scope):
            session_id = _session_id(scope)
            if session_id:
                await self._wait_for(session_id)
        await self.app(scope, receive, send)

    async def _wait_for(self, session_id: str) -> None:
        from chainlit.session import WebsocketSession

        # Chainlit offers no event for a new session: poll its registry, a bounded while.
        for _ in range(math.ceil(self.wait_seconds / POLL_SECONDS)):
            if WebsocketSession.get_by_id(session_id) is not None:
                return
            await asyncio.sleep(POLL_SECONDS)


def _is_upload(scope: Scope) -> bool:
    path = str(scope["path"]).rstrip("/")
    return path == UPLOAD_PATH or path.endswith(UPLOAD_PATH)


def _session_id(scope: Scope) -> str | None:
    query = parse_qs(bytes(scope.get("query_string", b"")).decode("latin-1"))
    values = query.get("session_id") or []
    return values[0] if values else None
