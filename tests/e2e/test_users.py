"""Two users in two browser contexts against one real app: each keeps to their own
documents, chats and ratings; a chat survives signing out and in, and the app being
killed in the middle of an answer."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.e2e.conftest import PASSWORD, launch_app, new_page, sign_in, stop_apps
from tests.e2e.test_chat_ui import answers, ask, wait_until_answered
from tests.e2e.test_upload_ui import send
from tests.openai_standin import OpenAIStandIn
from tests.samples import pdf_bytes, write

pytestmark = pytest.mark.e2e

QUESTION = "What is the codename of the zebra project?"
FOLLOW_UP = "And what is its budget?"


@pytest.fixture
def model() -> Iterator[OpenAIStandIn]:
    standin = OpenAIStandIn(word_delay=0.02).start()
    yield standin
    standin.stop()


@pytest.fixture
def apps() -> Iterator[list[subprocess.Popen[str]]]:
    processes: list[subprocess.Popen[str]] = []
    yield processes
    stop_apps(processes)


def signed_in(browser: Browser, url: str, user: str) -> tuple[BrowserContext, Page]:
    page = new_page(browser)
    page.goto(sign_in(page, url, user))
    expect(page.get_by_text("The knowledge base holds")).to_be_visible()
    return page.context, page


def open_chat(page: Page, thread_id: str) -> None:
    page.locator(f"#thread-{thread_id}").click()
    expect(page).to_have_url(f"{page.url.split('/thread/')[0].rstrip('/')}/thread/{thread_id}")


def thread_of(page: Page, url: str, thread_id: str) -> dict[str, Any]:
    response = page.context.request.get(f"{url}/project/thread/{thread_id}")
    assert response.ok, response.text()
    thread: dict[str, Any] = response.json()
    return thread


def chat_id(page: Page) -> str:
    """The id of the chat `page` shows, read from its entry in the sidebar."""
    link = page.locator("#thread-history a[href^='/thread/']").first
    expect(link).to_be_visible()
    return (link.get_attribute("href") or "").removeprefix("/thread/")


def retrievals(page: Page, url: str, thread_id: str) -> list[str]:
    """What each retrieval step of the chat listed (the passages' sources), as stored."""
    steps = thread_of(page, url, thread_id)["steps"]
    return [str(s["output"]) for s in steps if s["type"] == "retrieval"]


def ratings(page: Page, url: str, thread_id: str) -> list[dict[str, Any]]:
    """The thumbs given in the chat, as stored."""
    steps = thread_of(page, url, thread_id)["steps"]
    return [dict(s["feedback"]) for s in steps if s.get("feedback")]


def condense_prompts(model: OpenAIStandIn) -> list[str]:
    """Every prompt that asked the model to rewrite a follow-up, whole (history included)."""
    return [
        "\n".join(str(m["content"]) for m in r["messages"])
        for r in model.requests
        if str(r["messages"][0]["content"]).startswith("Rewrite the user's last question")
    ]


def test_each_user_keeps_to_their_own(
    browser: Browser,
    apps: list[subprocess.Popen[str]],
    model: OpenAIStandIn,
    tmp_path: Path,
) -> None:
    url = launch_app(tmp_path, apps, OPENAI_BASE_URL=model.base_url, LLM_MODEL="standin")
    zebra = write(tmp_path / "zebra.pdf", pdf_bytes(["The zebra project codename is Kilimanjaro."]))

    # A wrong password, or a wrong name, gets one message that does not say which was wrong.
    stranger = browser.new_context()
    login = stranger.new_page()
    messages = []
    for user, password in (("ada", "not the password"), ("nobody", PASSWORD)):
        login.goto(f"{url}/login")
        login.locator("#email").fill(user)
        login.locator("#password").fill(password)
        login.get_by_role("button", name="Sign In").click()
        alert = login.get_by_role("alert")
        expect(alert).to_be_visible()
        messages.append(alert.inner_text())
    assert messages[0] == messages[1] and "password" not in messages[0].lower()
    stranger.close()

    # Ada uploads a document and gets it cited; she rates the answer.
    ada_context, ada = signed_in(browser, url, "ada")
    send(ada, QUESTION, [zebra])
    expect(ada.locator("[data-step-type='assistant_message']", has_text="zebra.pdf: added"))
    answers(ada).last.locator(".element-link", has_text="[1]").click()
    expect(ada.locator("#side-view-content")).to_contain_text("Kilimanjaro")
    answers(ada).last.locator(".positive-feedback-off").click()
    ada.get_by_role("button", name="Submit").click()
    expect(answers(ada).last.locator(".positive-feedback-on")).to_be_visible()
    ada_thread = chat_id(ada)
    assert "zebra.pdf" in " ".join(retrievals(ada, url, ada_thread))
    [rating] = ratings(ada, url, ada_thread)

    # Bob asks the same question: no passage of Ada's; he cannot list or remove it.
    bob_context, bob = signed_in(browser, url, "bob")
    ask(bob, QUESTION)
    wait_until_answered(bob)
    for citation in answers(bob).last.locator(".element-link").all():
        citation.click()
        expect(bob.locator("#side-view-content")).to_contain_text("Source:")
        expect(bob.locator("#side-view-content")).not_to_contain_text("zebra.pdf")
    bob_thread = chat_id(bob)
    assert "zebra.pdf" not in " ".join(retrievals(bob, url, bob_thread))
    send(bob, "/docs")
    expect(answers(bob).last).to_contain_text("faq.txt")
    expect(answers(bob).last).not_to_contain_text("zebra.pdf")
    send(bob, "/remove zebra.pdf")
    expect(answers(bob).last).not_to_contain_text("Removed")

    # Bob cannot open Ada's chat by its URL, read it through the API, or change her rating.
    bob.goto(f"{url}/thread/{ada_thread}")
    expect(bob.get_by_text("Kilimanjaro")).to_have_count(0)
    # No message of hers (his sidebar names his own chat after the same question).
    expect(bob.locator(".step", has_text=QUESTION)).to_have_count(0)
    assert bob_context.request.get(f"{url}/project/thread/{ada_thread}").status in (401, 403, 404)
    for feedback in ({**rating, "value": 0}, {**rating, "id": None, "value": 0}):
        overwrite = bob_context.request.put(
            f"{url}/feedback", data={"feedback": feedback, "sessionId": "any"}
        )
        assert overwrite.status in (401, 403, 404), overwrite.text()
    removal = bob_context.request.delete(f"{url}/feedback", data={"feedbackId": rating["id"]})
    assert removal.status in (401, 403, 404), removal.text()
    assert ratings(ada, url, ada_thread) == [rating]
    bob_context.close()

    # Ada's document is still hers.
    send(ada, "/docs")
    expect(answers(ada).last).to_contain_text("zebra.pdf")

    # Ada signs out and in again: the chat is in the sidebar, with its messages and
    # citations, and a follow-up question uses the earlier turn.
    ada.context.request.post(f"{url}/logout")
    ada.goto(url)
    expect(ada).to_have_url(f"{url}/login")
    ada.goto(sign_in(ada, url, "ada"))
    open_chat(ada, ada_thread)
    expect(ada.get_by_text(QUESTION).first).to_be_visible()
    resumed = answers(ada).filter(has_text="closest passages").first
    resumed.locator(".element-link", has_text="[1]").click()
    expect(ada.locator("#side-view-content")).to_contain_text("Kilimanjaro")
    ask(ada, FOLLOW_UP)
    wait_until_answered(ada)
    follow_up = condense_prompts(model)[-1]
    assert QUESTION in follow_up and FOLLOW_UP in follow_up
    ada_context.close()


def test_killing_the_app_mid_answer_loses_no_earlier_message(
    browser: Browser, apps: list[subprocess.Popen[str]], model: OpenAIStandIn, tmp_path: Path
) -> None:
    env = {"OPENAI_BASE_URL": model.base_url, "LLM_MODEL": "standin"}
    url = launch_app(tmp_path, apps, **env)
    context, page = signed_in(browser, url, "ada")
    ask(page, "How does MMR differ from similarity search?")
    wait_until_answered(page)
    thread_id = chat_id(page)

    # The second answer streams slowly; the app is killed while it is being written.
    model.word_delay = 0.5
    ask(page, "Which one is faster?")
    expect(answers(page).last).to_contain_text("Similarity")
    os.kill(apps[-1].pid, signal.SIGKILL)
    apps[-1].wait(timeout=10)
    context.close()
    model.word_delay = 0.02

    time.sleep(0.5)
    url = launch_app(tmp_path, apps, **env)
    context, page = signed_in(browser, url, "ada")
    open_chat(page, thread_id)
    expect(page.get_by_text("How does MMR differ from similarity search?")).to_be_visible()
    expect(page.get_by_text("Which one is faster?")).to_be_visible()
    # The first answer whole; the second was cut off after its first words.
    expect(answers(page).filter(has_text="relevance for diversity")).to_have_count(1)
    # The chat goes on after the restart.
    ask(page, "And which one is more diverse?")
    wait_until_answered(page)
    expect(answers(page).last).to_contain_text("diversity")
    context.close()
