"""`/docs` and `/remove` on a real Milvus Lite knowledge base."""

from __future__ import annotations

import pytest
from markdown_it import MarkdownIt

from core.store import DocumentInfo, KnowledgeBase
from tests.markdown_view import active_constructs, visible_text
from ui.commands import documents_table, parse_command, run_command


def test_parse_command() -> None:
    assert parse_command(None, "/docs") == ("docs", "")
    assert parse_command(None, "  /remove  my file.pdf ") == ("remove", "my file.pdf")
    assert parse_command("remove", "report.pdf") == ("remove", "report.pdf")
    assert parse_command(None, "what is /docs?") is None
    assert parse_command(None, "/documents") is None


def test_documents_table_shows_names_and_uploaders_literally() -> None:
    name = "![s](https:HOST?x) a|b `c`.md"
    uploader = "[me](//HOST/u)"
    docs = [
        DocumentInfo(source=name, chunks=2, added_at=None, chat_id="other", uploaded_by=uploader)
    ]
    table = documents_table(docs, chat_id="c")
    assert active_constructs(table) == [], table
    tokens = MarkdownIt("commonmark").enable("table").parse(table)
    cells = [t for t in tokens if t.type == "td_open"]
    assert len(cells) == 4  # the pipe in the name did not split its cell
    assert f"upload by {uploader}" in visible_text(table)


@pytest.mark.integration
async def test_list_and_remove(seeded_kb: KnowledgeBase) -> None:
    listing = await run_command(seeded_kb, "docs", "", chat_id="c")
    assert "**4 documents** (4 chunks)" in listing
    assert "| `c.pdf` | 1 | unknown | ingest |" in listing
    assert "| `a.txt` | 1 | unknown | upload by someone |" in listing

    reply = await run_command(seeded_kb, "remove", "b.txt", chat_id="c")
    assert reply == "Removed `b.txt` (1 chunks) from the knowledge base."
    assert "b.txt" not in await run_command(seeded_kb, "docs", "", chat_id="c")
    assert await seeded_kb.count() == 3

    missing = await run_command(seeded_kb, "remove", "b.txt", chat_id="c")
    assert missing.startswith("No document named `b.txt`")


@pytest.mark.integration
async def test_remove_cannot_be_widened_by_injection(seeded_kb: KnowledgeBase) -> None:
    for attack in ['x" or source != "', 'a.txt" or chunk >= 0 or source == "', "*"]:
        reply = await run_command(seeded_kb, "remove", attack, chat_id="c")
        assert reply.startswith("No document named")
    assert await seeded_kb.count() == 4


@pytest.mark.integration
async def test_remove_needs_a_name(seeded_kb: KnowledgeBase) -> None:
    assert "Say which document" in await run_command(seeded_kb, "remove", "", chat_id="c")
