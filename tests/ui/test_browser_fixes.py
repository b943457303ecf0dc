"""The fixes to what Chainlit serves the browser, without a browser (the browser test is
tests/e2e/test_chat_reliability_ui.py): the page, the bundle, early and refused uploads."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from chainlit import session as chainlit_session
from chainlit.server import build_dir, get_html_template
from starlette.types import Message, Receive, Scope, Send

from tests.ui.conftest import RecordingEmitter
from ui.early_uploads import WaitForSession
from ui.page import adjust_page, without_foreign_links
from ui.side_panel import main_bundle, without_auto_open
from ui.upload_refusals import KIND, Refusal, report_refused_upload


def test_the_page_links_nothing_on_another_host_and_hides_the_early_composer() -> None:
    original = get_html_template("")
    assert "fonts.googleapis.com" in original and "cdn.jsdelivr.net" in original
    page = adjust_page(original)
    assert "//" not in "".join(line for line in page.splitlines() if "<link" in line)
    assert 'href="/assets/' in page and 'src="/assets/' in page  # the app's own kept
    assert "#welcome-screen > * { display: none !important; }" in page
    assert without_foreign_links('<link href=//x.example/a.css rel="stylesheet">') == ""


def test_the_packaged_bundle_loses_exactly_the_auto_open_call() -> None:
    bundle = main_bundle(Path(build_dir))
    assert bundle is not None
    original = bundle.read_bytes()
    patched = without_auto_open(original)
    assert patched is not None and len(original) - len(patched) == len(
        b"u({title:D[D.length-1].name,elements:D})"
    ) - len(b"void 0")
    assert without_auto_open(patched) is None  # applied once, and recognisably


class Recorder:
    def __init__(self) -> None:
        self.called_at: float | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.called_at = time.monotonic()


def upload(session_id: str) -> Scope:
    query = f"session_id={session_id}".encode()
    return {"type": "http", "method": "POST", "path": "/project/file", "query_string": query}


async def receive() -> Message:
    return {"type": "http.request", "body": b""}


async def send(message: Message) -> None:
    pass


async def test_an_upload_waits_for_its_session_then_goes_through() -> None:
    app = Recorder()
    middleware = WaitForSession(app, wait_seconds=5)
    started = time.monotonic()

    async def create_session_later() -> None:
        await asyncio.sleep(0.3)
        chainlit_session.ws_sessions_id["late-session"] = object()  # type: ignore[assignment]

    try:
        await asyncio.gather(
            middleware(upload("late-session"), receive, send), create_session_later()
        )
    finally:
        chainlit_session.ws_sessions_id.pop("late-session", None)
    assert app.called_at is not None and 0.3 <= app.called_at - started < 1


async def test_an_upload_for_a_session_that_never_comes_waits_a_bounded_time() -> None:
    app = Recorder()
    started = time.monotonic()
    await WaitForSession(app, wait_seconds=0.2)(upload("no-such-session"), receive, send)
    assert app.called_at is not None and 0.2 <= app.called_at - started < 1  # then Chainlit 404s


async def test_a_refusal_from_the_browser_becomes_a_plain_text_message(
    chainlit_events: RecordingEmitter,
) -> None:
    await report_refused_upload(
        {"kind": KIND, "reason": "File type must be text/plain", "names": ["![x](h).png", 3]}
    )
    for junk in ({"kind": "other", "reason": "x"}, {"kind": KIND, "reason": " "}, "text", None):
        await report_refused_upload(junk)
    [message] = chainlit_events.of("new_message")
    assert message["output"] == "**Not attached**: `![x](h).png`: File type must be text/plain"
    assert Refusal.from_browser({"kind": KIND, "reason": "r" * 999}) == Refusal("r" * 300, ())
