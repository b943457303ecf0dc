"""Issue 12 in a real browser against a real `chainlit run` (one app for the module, with
the OpenAI stand-in as its model): what is typed and a file attached as the page opens
are kept, a file the browser refuses leaves its reason in the chat; citations
open the side panel only when clicked, with the passage's every character; the page and
a chat never contact another host; a hung model shows that it is waited for, then the
passages with the reason.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Request, expect

from tests.e2e.conftest import PASSWORD, launch_app, sign_in, stop_apps
from tests.e2e.test_chat_ui import answers, ask, wait_until_answered
from tests.e2e.test_upload_ui import send
from tests.openai_standin import OpenAIStandIn

pytestmark = pytest.mark.e2e

ANSWER = "From the notes [1], and also [2]."
QUESTION = "What does the zanzibar protocol say?"
# Characters Markdown would eat: emphasis, a setext heading underline, a "directive".
VERBATIM_LINES = ["Run it with __NOGLOBS__ set.", "Signed, the zanzibar team", "=" * 20]
VERBATIM_LINES += ["0:text/x-diff"]
TYPING_DELAY_MS = 30  # a fast typist
VERBATIM = f"{QUESTION} It says so.\n" + "\n".join(VERBATIM_LINES) + "\n"


class App(NamedTuple):
    url: str
    model: OpenAIStandIn


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    model = OpenAIStandIn(answer=ANSWER, word_delay=0.01).start()
    processes: list[subprocess.Popen[str]] = []
    try:
        url = launch_app(
            tmp_path_factory.mktemp("reliability"),
            processes,
            OPENAI_BASE_URL=model.base_url,
            LLM_MODEL="standin",
            MODEL_FIRST_TOKEN_TIMEOUT="2",
            MODEL_ANSWER_BUDGET="3",
        )
        yield App(url, model)
    finally:
        stop_apps(processes)
        model.stop()


def document(tmp_path: Path) -> Path:
    path = tmp_path / "zanzibar.txt"
    path.write_text(VERBATIM, encoding="utf-8")
    return path


def test_what_is_typed_as_the_page_opens_reaches_the_message_box(app: App, page: Page) -> None:
    page.goto(sign_in(page, app.url))
    page.keyboard.type(QUESTION, delay=TYPING_DELAY_MS)  # before the box exists
    expect(page.locator("#chat-input")).to_have_value(QUESTION)  # lost its start before
    page.keyboard.type(" Twice?", delay=TYPING_DELAY_MS)  # the box has the focus and caret
    expect(page.locator("#chat-input")).to_have_value(QUESTION + " Twice?")


def test_a_file_attached_as_the_page_opens_is_kept_and_answered_from(
    app: App, page: Page, tmp_path: Path
) -> None:
    page.goto(sign_in(page, app.url))
    # At once, as the page opens (before the chat session exists).
    page.set_input_files("#upload-button-input", [str(document(tmp_path))])
    expect(page.get_by_text("Answers are written by")).to_be_visible()
    page.locator("#chat-input").press_sequentially(QUESTION, delay=TYPING_DELAY_MS)
    expect(page.locator("#attachments")).to_contain_text("zanzibar.txt")
    expect(page.locator("#chat-submit")).to_be_enabled()
    page.locator("#chat-submit").click()
    expect(page.locator(".step", has_text=QUESTION).first).to_be_visible()  # every character
    report = answers(page).filter(has_text="to the knowledge base")
    expect(report).to_contain_text("zanzibar.txt: added, 1 chunks")
    wait_until_answered(page)
    answer = answers(page).last
    expect(answer).to_contain_text("From the notes")
    answer.locator(".element-link", has_text="[1]").click()
    expect(page.locator("#side-view-content")).to_contain_text("zanzibar.txt")

    # A file the browser refuses leaves its reason in the conversation, not only a toast.
    picture = tmp_path / "holiday.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n")
    page.set_input_files("#upload-button-input", [str(picture)])
    refusal = answers(page).filter(has_text="Not attached")
    expect(refusal).to_contain_text("Not attached: holiday.png: File type must be")


def test_citations_open_on_click_verbatim_and_nothing_leaves_the_machine(
    app: App, page: Page, tmp_path: Path
) -> None:
    app_host = urlsplit(app.url).netloc
    requested: list[str] = []

    def record(request: Request) -> None:
        requested.append(request.url)

    page.on("request", record)
    page.goto(app.url)  # the sign-in form, as a visitor sees it
    page.locator("#email").fill("bob")
    page.locator("#password").fill(PASSWORD)
    page.locator("button[type='submit']").click()
    expect(page.get_by_text("Answers are written by")).to_be_visible()
    assert page.locator("link[href*='//']").count() == 0  # no stylesheet, no preconnect

    side = page.locator("#side-view-content")
    ask(page, "How does MMR differ from similarity search?")
    wait_until_answered(page)
    first = answers(page).nth(answers(page).count() - 1)  # fixed, not "the last one"
    expect(first.locator(".element-link")).to_have_text(["[1]", "[2]"])
    page.wait_for_timeout(1000)  # the panel used to open as the passages arrived
    expect(side).to_have_count(0)

    send(page, QUESTION, [document(tmp_path)])
    second = answers(page).last
    expect(second.locator(".element-link")).to_have_text(["[1]", "[2]"])
    page.wait_for_timeout(1000)
    expect(side).to_have_count(0)

    second.locator(".element-link", has_text="[1]").click()
    expect(side).to_contain_text("zanzibar.txt")
    shown = side.inner_text()
    for line in VERBATIM_LINES:  # plain text: every character, no heading, no bold
        assert line in shown, (line, shown)
    assert side.locator("h1, h2, strong, em").count() == 0
    first.locator(".element-link", has_text="[1]").click()
    expect(side).not_to_contain_text("zanzibar")
    expect(side).to_contain_text("Source:")

    hosts = {urlsplit(url).netloc for url in requested if urlsplit(url).scheme != "data"}
    assert hosts == {app_host}, sorted(set(requested))


def test_a_hung_model_is_waited_for_visibly_then_the_passages_come_with_the_reason(
    app: App, page: Page
) -> None:
    page.goto(sign_in(page, app.url))
    expect(page.get_by_text("Answers are written by")).to_be_visible()
    app.model.mode = "hang"
    try:
        ask(page, "How does MMR differ from similarity search?")
        answer = answers(page).last
        expect(answer).to_contain_text("Waiting for the language model…")
        wait_until_answered(page)
        expect(answer).to_contain_text(
            "The language model could not answer: The language model did not answer within "
            "the 3 s allowed for an answer. Here are the most relevant passages instead."
        )
        expect(answer.locator(".element-link").first).to_have_text("[1]")
    finally:
        app.model.mode = "ok"
    ask(page, "And which one is faster?")
    wait_until_answered(page)
    expect(answers(page).last).to_contain_text("From the notes")
