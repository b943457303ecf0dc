"""The chat in a real browser against a real `chainlit run`."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.e2e.conftest import StartApp, sign_in
from tests.openai_standin import OpenAIStandIn

pytestmark = pytest.mark.e2e


def answers(page: Page) -> Locator:
    return page.locator("[data-step-type='assistant_message']")


def ask(page: Page, question: str) -> None:
    before = answers(page).count()
    page.locator("#chat-input").press_sequentially(question)
    page.locator("#chat-submit").click()
    expect(answers(page)).to_have_count(before + 1)


def wait_until_answered(page: Page) -> None:
    """The stop button shows while an answer is being produced."""
    expect(page.locator("#stop-button")).to_have_count(0, timeout=60_000)


def choose_search_type(page: Page, search_type: str) -> None:
    page.locator("#chat-settings-open-modal").click()
    page.locator("#search_type").click()
    page.get_by_role("option", name=search_type, exact=True).click()
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("dialog")).to_have_count(0)


def open_last_step(page: Page) -> str:
    page.get_by_text("Used Search the knowledge base").last.click()
    return page.locator(".step").last.inner_text()


def test_retrieval_only_chat(start_app: StartApp, page: Page) -> None:
    page.goto(sign_in(page, start_app()))
    expect(page.get_by_text("The knowledge base holds")).to_be_visible()
    expect(page.get_by_text("4 documents")).to_be_visible()

    # A starter question from the welcome message.
    page.get_by_role("button", name="Similarity vs. MMR").click()
    wait_until_answered(page)
    first = answers(page).last
    expect(first).to_contain_text("No language model is configured")
    expect(first.locator(".element-link").first).to_have_text("[1]")
    first.locator(".element-link").first.click()
    expect(page.locator("#side-view-content")).to_contain_text("Source:")
    expect(page.locator("#side-view-content")).to_contain_text("Score:")

    # A follow-up question, typed: hybrid search by default, each passage's route ranks.
    ask(page, "And what does lambda_mult control?")
    wait_until_answered(page)
    expect(answers(page).last.locator(".element-link").first).to_be_visible()
    step = open_last_step(page)
    assert "(hybrid search: keyword + dense, fused)" in step and "dense #" in step

    # Switch to MMR and ask again: the retrieval step says so, and scores are n/a.
    choose_search_type(page, "hybrid + MMR (diverse)")
    ask(page, "How do I point the app at a Milvus server?")
    wait_until_answered(page)
    assert "(hybrid search, diversified (MMR))" in open_last_step(page)
    answers(page).last.locator(".element-link").first.click()
    expect(page.locator("#side-view-content")).to_contain_text("n/a (MMR)")


def test_chat_with_a_model_streams_cited_answers(start_app: StartApp, page: Page) -> None:
    model = OpenAIStandIn(word_delay=0.08).start()
    try:
        page.goto(sign_in(page, start_app(OPENAI_BASE_URL=model.base_url, LLM_MODEL="standin")))
        expect(page.get_by_text("Answers are written by")).to_be_visible()
        ask(page, "How does MMR differ from similarity search?")
        # Streaming: the answer is seen part-written before it is complete.
        seen: set[str] = set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = answers(page).last.inner_text()
            seen.add(text)
            if "diversity" in text and "[2]" in text:
                break
            time.sleep(0.05)
        partial = [t for t in seen if t.startswith("Similarity") and "diversity" not in t]
        assert partial, "the answer never showed up part-written"
        wait_until_answered(page)
        last = answers(page).last
        expect(last).to_contain_text("Similarity search returns the closest passages")
        expect(last.locator(".element-link")).to_have_text(["[1]", "[2]"])
        assert model.requests[-1]["stream"] is True

        ask(page, "and which one is faster?")
        wait_until_answered(page)
        condense = [
            r
            for r in model.requests
            if r["messages"][0]["content"].startswith("Rewrite the user's last question")
        ]
        assert len(condense) == 1
        assert "(standalone)" in open_last_step(page)
    finally:
        model.stop()
