"""HTTP hardening of Chainlit's server: security headers, a Content-Security-Policy,
uploaded files served inert, an Origin check on the Socket.IO endpoint, and upload
bodies bounded while they stream (`ui.upload_limits`).

Chainlit 2.12 sets none of these. Its pages get a CSP that allows scripts only from the
app and the inline scripts the page itself holds (by hash: Chainlit writes two small
inline scripts, one of which depends on the configuration), images only from the app or
`data:`, connections only to the app (its socket included), and no framing. Stylesheets
and fonts from other hosts (Chainlit's index.html links Google Fonts and a KaTeX CDN) are
blocked too, so a page never makes a request that leaves the app.

Files served from `GET /project/file/<id>` (uploads, and the text of side-panel elements)
are downloads: `Content-Disposition: attachment`, anything but a few passive types served
as `application/octet-stream`, and a sandboxing CSP, so an uploaded HTML or SVG file can
never run in the app's origin.

Socket.IO: Chainlit builds its server with `cors_allowed_origins=[]`, which turns
engine.io's Origin check off, so any web page could open a session with the visitor's
cookie (cross-site WebSocket hijacking). Only the app's own origin (the request's `Host`)
and origins listed in `[project] allow_origins` (other than "*") may connect.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ui.upload_limits import UploadBodyLimit

COMMON_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}
SERVED_FILE_CSP = "default-src 'none'; sandbox"
# Served with their own type (the UI shows them); everything else is served as bytes.
PASSIVE_TYPES = frozenset(
    {
        "text/plain",
        "application/json",
        "application/pdf",
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
    }
)
_SERVED_FILE = re.compile(r"/project/file/[^/]+$")
_INLINE_SCRIPT = re.compile(
    rb"<script(?![^>]*\ssrc\s*=)[^>]*>(.*?)</script\s*>", re.DOTALL | re.IGNORECASE
)
_HOST = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?")


def secure_chainlit_server() -> None:
    """Install the headers middleware and the socket Origin check on Chainlit's server.

    Call it before the server starts serving (app.py does, when Chainlit loads it):
    Starlette builds its middleware stack on the first request.
    """
    from chainlit.config import config
    from chainlit.server import app, sio

    installed: set[object] = {getattr(m, "cls", None) for m in app.user_middleware}
    if SecurityHeaders not in installed:
        # Innermost, so it sees the page before Chainlit's GZip middleware compresses it.
        app.user_middleware.append(Middleware(SecurityHeaders))
    if UploadBodyLimit not in installed:
        app.user_middleware.insert(0, Middleware(UploadBodyLimit))  # before anything reads
    sio.eio.cors_allowed_origins = SocketOrigins(config.project.allow_origins or [])


class SecurityHeaders:
    """ASGI middleware: common headers on every response, a CSP on pages, inert files."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        served_file = scope["method"] in ("GET", "HEAD") and bool(
            _SERVED_FILE.search(scope["path"])
        )
        host = Headers(scope=scope).get("host", "")
        held_start: Message | None = None
        body = bytearray()

        async def send_secured(message: Message) -> None:
            nonlocal held_start
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.update(COMMON_HEADERS)
                if served_file:
                    make_inert(headers)
                elif headers.get("content-type", "").startswith("text/html"):
                    held_start = message  # until the page is complete: its scripts are hashed
                    return
            elif held_start is not None and message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
                if message.get("more_body", False):
                    return
                MutableHeaders(scope=held_start)["content-security-policy"] = page_csp(
                    bytes(body), host
                )
                await send(held_start)
                message = {"type": "http.response.body", "body": bytes(body)}
            await send(message)

        await self.app(scope, receive, send_secured)


def page_csp(page: bytes, host: str) -> str:
    """The CSP for one of Chainlit's pages: its own inline scripts, by hash, and nothing
    from other hosts. `host` (the request's Host) adds the socket's ws/wss URLs, for
    browsers whose 'self' does not cover WebSockets."""
    hashes = "".join(
        f" 'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(page)
    )
    sockets = f" ws://{host} wss://{host}" if _HOST.fullmatch(host) else ""
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self'{hashes}",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            f"connect-src 'self'{sockets}",
            "worker-src 'self' blob:",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def make_inert(headers: MutableHeaders) -> None:
    """A served file is a download that cannot run: never inline HTML, SVG or script."""
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in PASSIVE_TYPES:
        headers["content-type"] = "application/octet-stream"
    headers["content-disposition"] = "attachment"
    headers["content-security-policy"] = SERVED_FILE_CSP


class SocketOrigins:
    """engine.io's `cors_allowed_origins` as a callable: may this Origin open a session?

    Yes for the app's own origin (same host and port as the request's `Host`, over http
    or https) and for the configured origins; no for any other, and for `null`. A
    request without an Origin (not a browser) is not checked by engine.io.

    >>> allowed = SocketOrigins(["https://chat.example.com", "*"])
    >>> allowed("http://127.0.0.1:8000", {"HTTP_HOST": "127.0.0.1:8000"})
    True
    >>> allowed("https://chat.example.com", {"HTTP_HOST": "10.0.0.5:8000"})
    True
    >>> allowed("http://evil.example", {"HTTP_HOST": "127.0.0.1:8000"})
    False
    """

    def __init__(self, configured: Iterable[str]) -> None:
        # "*" means any origin for plain HTTP (CORS); never for the socket.
        self.configured = frozenset(_normal(o) for o in configured if o.strip() != "*")

    def __call__(self, origin: str | None, environ: dict[str, Any]) -> bool:
        if not origin:
            return False
        origin = _normal(origin)
        if origin in self.configured:
            return True
        parts = urlsplit(origin)
        host = str(environ.get("HTTP_HOST", "")).lower()
        return parts.scheme in ("http", "https") and bool(host) and parts.netloc == host


def _normal(origin: str) -> str:
    return origin.strip().rstrip("/").lower()
