"""The headers middleware on a small Starlette app, and the socket Origin policy."""

from __future__ import annotations

import base64
import doctest
import hashlib

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

import ui.http_security
from ui.http_security import SecurityHeaders, SocketOrigins

PAGE = (
    "<html><head><script>\n  const global = globalThis;\n</script>"
    '<script type="module" src="/assets/index.js"></script>'
    "<script>\nundefined\n</script></head><body>" + "x" * 2000 + "</body></html>"
)


def _sha256(script: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"


def _served_file(request: Request) -> Response:
    kind = request.query_params["type"]
    return Response(b"<svg onload=alert(1)>", media_type=kind)


def _app() -> Starlette:
    """Like Chainlit's: GZip outside, the security middleware innermost."""
    return Starlette(
        routes=[
            Route("/", lambda _: HTMLResponse(PAGE)),
            Route("/project/settings", lambda _: JSONResponse({"ok": True})),
            Route("/project/file/{file_id}", _served_file),
        ],
        middleware=[Middleware(GZipMiddleware), Middleware(SecurityHeaders)],
    )


async def _get(path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://app.test:8000") as client:
        return await client.get(path, headers={"accept-encoding": "gzip"})


async def test_pages_get_a_csp_with_their_inline_scripts_by_hash() -> None:
    response = await _get("/")
    assert response.text == PAGE  # unchanged (and still compressed on the wire)
    assert response.headers["content-encoding"] == "gzip"
    csp = dict(d.split(" ", 1) for d in response.headers["content-security-policy"].split("; "))
    assert csp["script-src"] == (
        f"'self' {_sha256(chr(10) + '  const global = globalThis;' + chr(10))} "
        f"{_sha256(chr(10) + 'undefined' + chr(10))}"
    )
    assert csp["img-src"] == "'self' data:"
    assert csp["connect-src"] == "'self' ws://app.test:8000 wss://app.test:8000"
    assert csp["frame-ancestors"] == "'none'"
    assert csp["object-src"] == "'none'"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"


async def test_other_responses_get_the_common_headers_only() -> None:
    response = await _get("/project/settings")
    assert response.json() == {"ok": True}
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in response.headers


async def test_served_files_are_inert_downloads() -> None:
    for risky in ("text/html", "image/svg+xml", "application/javascript", "text/xml"):
        response = await _get(f"/project/file/f1?type={risky}")
        assert response.headers["content-type"] == "application/octet-stream", risky
        assert response.headers["content-disposition"] == "attachment"
        assert response.headers["content-security-policy"] == "default-src 'none'; sandbox"
        assert response.headers["x-content-type-options"] == "nosniff"
    passive = await _get("/project/file/f2?type=text/plain")
    assert passive.headers["content-type"].startswith("text/plain")  # the side panel reads it
    assert passive.headers["content-disposition"] == "attachment"


def test_socket_origins_are_the_apps_own_and_the_configured_ones() -> None:
    allowed = SocketOrigins(["https://chat.example.com/", "*"])
    own = {"HTTP_HOST": "127.0.0.1:8000"}
    assert allowed("http://127.0.0.1:8000", own)
    assert allowed("https://127.0.0.1:8000", own)  # TLS in front, same host and port
    assert allowed("HTTPS://Chat.Example.com", own)
    assert not allowed("http://evil.example", own)
    assert not allowed("http://127.0.0.1:8001", own)
    assert not allowed("http://127.0.0.1:8000.evil.example", own)
    assert not allowed("null", own)
    assert not allowed("file://", own)
    assert not allowed(None, own)
    # Forwarded headers are not trusted; "*" does not open the socket to everyone.
    forwarded = {**own, "HTTP_X_FORWARDED_HOST": "evil.example"}
    assert not allowed("http://evil.example", forwarded)
    assert not SocketOrigins(["*"])("http://evil.example", own)


def test_docstring_examples_hold() -> None:
    assert doctest.testmod(ui.http_security).failed == 0
