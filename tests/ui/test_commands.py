"""`/docs` and `/remove`, scoped to what the signed-in user may see (on the fake
knowledge base; the same scopes on real Milvus are in tests/core/store)."""

from __future__ import annotations

from markdown_it import MarkdownIt

from accounts.service import owned_by
from core.knowledge import AccessScope, DocumentInfo
from tests.fakes import InMemoryKnowledgeBase
from tests.markdown_view import active_constructs, visible_text
from ui.commands import documents_table, parse_command, run_command

ALICE = AccessScope.for_user("alice")
ALICE_OWN = owned_by("alice")


def test_parse_command() -> None:
    assert parse_command(None, "/docs") == ("docs", "")
    assert parse_command(None, "  /remove  my file.pdf ") == ("remove", "my file.pdf")
    assert parse_command("remove", "report.pdf") == ("remove", "report.pdf")
    assert parse_command(None, "what is /docs?") is None
    assert parse_command(None, "/documents") is None


def test_documents_table_shows_names_and_uploaders_literally() -> None:
    name = "![s](https:HOST?x) a|b `c`.md"
    uploader = "[me](//HOST/u)"
    docs = [DocumentInfo(source=name, owner=uploader, chunks=2, added_at=None, chat_id="other")]
    table = documents_table(docs, chat_id="c")
    assert active_constructs(table) == [], table
    tokens = MarkdownIt("commonmark").enable("table").parse(table)
    cells = [t for t in tokens if t.type == "td_open"]
    assert len(cells) == 4  # the pipe in the name did not split its cell
    assert f"upload by {uploader}" in visible_text(table)


async def test_list_and_remove_within_the_users_scope(memory_kb: InMemoryKnowledgeBase) -> None:
    listing = await run_command(
        memory_kb, "docs", "", scope=ALICE, removable=ALICE_OWN, chat_id="chat-A"
    )
    assert "**3 documents** (3 chunks)" in listing
    assert "| `c.pdf` | 1 | unknown | library |" in listing
    assert "| `a.txt` | 1 | unknown | this chat |" in listing
    assert "b.txt" not in listing  # bob's upload

    elsewhere = await run_command(
        memory_kb, "docs", "", scope=ALICE, removable=ALICE_OWN, chat_id="other"
    )
    assert "| `a.txt` | 1 | unknown | upload by alice |" in elsewhere

    refused = await run_command(
        memory_kb, "remove", "b.txt", scope=ALICE, removable=ALICE_OWN, chat_id="c"
    )
    assert refused.startswith("No document named `b.txt`")
    assert await memory_kb.count(AccessScope.everything()) == 4

    reply = await run_command(
        memory_kb, "remove", "a.txt", scope=ALICE, removable=ALICE_OWN, chat_id="c"
    )
    assert reply == "Removed `a.txt` (1 chunks) from the knowledge base."
    assert "a.txt" not in await run_command(
        memory_kb, "docs", "", scope=ALICE, removable=ALICE_OWN, chat_id="c"
    )
    assert await memory_kb.count(AccessScope.everything()) == 3


async def test_remove_cannot_be_widened_by_injection(memory_kb: InMemoryKnowledgeBase) -> None:
    for attack in ['x" or source != "', 'a.txt" or chunk >= 0 or source == "', "*"]:
        reply = await run_command(
            memory_kb, "remove", attack, scope=ALICE, removable=ALICE_OWN, chat_id="c"
        )
        assert reply.startswith("No document named")
    assert await memory_kb.count(AccessScope.everything()) == 4


async def test_remove_needs_a_name(memory_kb: InMemoryKnowledgeBase) -> None:
    reply = await run_command(
        memory_kb, "remove", "", scope=ALICE, removable=ALICE_OWN, chat_id="c"
    )
    assert "Say which document" in reply


async def test_only_an_admin_removes_library_documents(memory_kb: InMemoryKnowledgeBase) -> None:
    refused = await run_command(
        memory_kb, "remove", "c.pdf", scope=ALICE, removable=ALICE_OWN, chat_id="c"
    )
    assert refused == "`c.pdf` is in the shared library: only an admin can remove it."
    assert await memory_kb.count(AccessScope.library()) == 2

    # An admin's removable scope is their documents and the library.
    reply = await run_command(
        memory_kb, "remove", "c.pdf", scope=ALICE, removable=ALICE, chat_id="c"
    )
    assert reply == "Removed `c.pdf` (1 chunks) from the knowledge base."
    assert await memory_kb.count(AccessScope.library()) == 1


def test_look_alike_names_are_told_apart() -> None:
    lookalike = "f\u0430q.txt"  # Cyrillic а
    docs = [
        DocumentInfo(source=name, owner="alice", chunks=1, added_at=None, chat_id="c")
        for name in ("faq.txt", lookalike, "отчёт 2024.pdf", "café.txt")
    ]
    table = documents_table(docs, chat_id="c")
    assert active_constructs(table) == []
    shown = visible_text(table)
    assert "faq.txt 1 unknown" in shown
    assert "f\u0430q.txt ⚠ mixed scripts (Cyrillic, Latin): f[U+0430]q.txt 1 unknown" in shown
    assert "отчёт 2024.pdf 1 unknown" in shown  # one script (the extension aside)
    assert "café.txt 1 unknown" in shown
