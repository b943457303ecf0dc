"""Uploading files in a real browser: progress and summary, cited answers, bad files,
listing and removing documents."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import StartApp, sign_in
from tests.e2e.test_chat_ui import answers, wait_until_answered
from tests.samples import BINARY_BYTES, docx_bytes, pdf_bytes, write

pytestmark = pytest.mark.e2e

QUESTION = "What is the codename of the zebra project?"


def send(page: Page, text: str, files: list[Path] | None = None) -> None:
    before = answers(page).count()
    if files:
        page.set_input_files("#upload-button-input", [str(f) for f in files])
        for f in files:
            expect(page.locator("#attachments")).to_contain_text(f.name)
        expect(page.locator("#chat-submit")).to_be_enabled()
    if text:
        page.locator("#chat-input").press_sequentially(text)
    page.locator("#chat-submit").click()
    expect(answers(page)).not_to_have_count(before)
    wait_until_answered(page)


def test_upload_ask_list_and_remove(start_app: StartApp, page: Page, tmp_path: Path) -> None:
    zebra = write(
        tmp_path / "zebra.pdf",
        pdf_bytes(["The zebra project codename is Kilimanjaro.", "Its budget is 42 million."]),
    )
    memo = write(tmp_path / "memo.docx", docx_bytes(["The Lisbon office opens on 3 March."]))
    page.goto(sign_in(page, start_app(MAX_FILE_MB="1")))
    expect(page.get_by_text("The knowledge base holds")).to_be_visible()

    # Two good files and a question in one message: ingested first, then answered from them.
    send(page, QUESTION, [zebra, memo])
    report = page.locator("[data-step-type='assistant_message']", has_text="to the knowledge base")
    expect(report.last).to_contain_text("zebra.pdf: added, 2 chunks")
    expect(report.last).to_contain_text("memo.docx: added, 1 chunks")
    answer = answers(page).last
    expect(answer).to_contain_text("zebra.pdf, page 1")
    answer.locator(".element-link", has_text="[1]").click()
    expect(page.locator("#side-view-content")).to_contain_text("Kilimanjaro")

    # Bad files: each gets its reason; nothing else happens.
    empty = write(tmp_path / "empty.txt", b"")
    binary = write(tmp_path / "binary.txt", BINARY_BYTES)
    send(page, "", [empty, binary])
    expect(report.last).to_contain_text("empty.txt: not added: the file is empty (0 bytes)")
    expect(report.last).to_contain_text("binary.txt: not added: binary data")

    # Over the size limit: refused before it is uploaded, with the limit in the message.
    big = write(tmp_path / "big.txt", b"x" * (1024 * 1024 + 10))
    page.set_input_files("#upload-button-input", [str(big)])
    expect(page.get_by_text("File is larger than 1 MB")).to_be_visible()

    # The same file again: already there.
    send(page, "", [zebra])
    expect(report.last).to_contain_text("zebra.pdf: already in the knowledge base")

    # List, remove, and the removed document is no longer cited.
    send(page, "/docs")
    expect(answers(page).last).to_contain_text("zebra.pdf")
    expect(answers(page).last).to_contain_text("this chat")
    send(page, "/remove zebra.pdf")
    expect(answers(page).last).to_contain_text("Removed zebra.pdf (2 chunks)")
    send(page, QUESTION)
    expect(answers(page).last).to_contain_text("[1]")
    expect(answers(page).last).not_to_contain_text("zebra.pdf")
