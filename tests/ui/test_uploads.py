"""Uploads from the chat, through the real ingest pipeline into real Milvus Lite."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core.knowledge import AccessScope, ChunkRecord, Hit, KnowledgeBase, SearchRequest
from core.store import MilvusKnowledgeBase
from ingest.pipeline import FileOutcome, IngestOptions, Ingestor
from tests.fakes import InMemoryKnowledgeBase
from tests.markdown_view import active_constructs, visible_text
from tests.samples import (
    BINARY_BYTES,
    CORRUPT_PDF,
    docx_bytes,
    encrypted_pdf_bytes,
    pdf_bytes,
    write,
)
from tests.ui.conftest import RecordingEmitter
from ui.uploads import UploadReport, document_name, ingest_uploads, outcome_line

pytestmark = pytest.mark.integration

FRENCH = "Le café du quartier ouvre à 7 h. Les crêpes sont préparées à la minute. " * 4


@dataclass
class Attached:
    """What Chainlit hands the handler: the user's file name and a server-side path."""

    name: str
    path: str


def attach(tmp_path: Path, name: str, data: bytes) -> Attached:
    # Chainlit stores uploads under a random name with a suffix guessed from the MIME type.
    stored = write(tmp_path / "files" / f"{abs(hash(name))}.bin", data)
    return Attached(name=name, path=str(stored))


def report_lines(events: RecordingEmitter) -> dict[str, str]:
    texts = [m["output"] for m in events.of("update_message") if "Adding" in m["output"]]
    lines = {}
    for line in texts[-1].splitlines()[2:]:
        name, _, status = line.removeprefix("- `").partition("`: ")
        lines[name] = status
    return lines


async def hits(kb: KnowledgeBase, source: str) -> list[Hit]:
    """Every stored chunk of `source`, whoever owns it."""
    request = SearchRequest(source, AccessScope.everything(), "dense", 20, 20, 0.5, (source,))
    return await kb.search(request)


@pytest.fixture
def ingestor(lite_kb: MilvusKnowledgeBase) -> Ingestor:
    options = IngestOptions(chunk_size=300, chunk_overlap=30, batch_size=4, max_file_bytes=65536)
    return Ingestor(lite_kb, options)


async def test_every_bad_file_gets_its_reason_and_good_ones_land(
    ingestor: Ingestor, tmp_path: Path, chainlit_events: RecordingEmitter
) -> None:
    files = [
        attach(tmp_path, "zebra.pdf", pdf_bytes(["Zebra codename is Kilimanjaro.", "Budget 42."])),
        attach(tmp_path, "memo.docx", docx_bytes(["The Lisbon office opens in March."])),
        attach(tmp_path, "café.txt", FRENCH.encode("cp1252")),
        attach(tmp_path, "empty.txt", b""),
        attach(tmp_path, "broken.pdf", CORRUPT_PDF),
        attach(tmp_path, "locked.pdf", encrypted_pdf_bytes("secret")),
        attach(tmp_path, "scan.pdf", pdf_bytes(["", ""])),
        attach(tmp_path, "binary.txt", BINARY_BYTES),
        attach(tmp_path, "page.pdf", b"<html><body>not a pdf</body></html>"),
        attach(tmp_path, "big.txt", b"word " * 30000),
        attach(tmp_path, "tool.exe", b"MZ\x90\x00"),
    ]
    outcomes = await ingest_uploads(ingestor, files, max_files=20, owner="alice", chat_id="chat-1")
    assert [o.status for o in outcomes[:3]] == ["added", "added", "added"]
    lines = report_lines(chainlit_events)
    assert lines["zebra.pdf"] == "**added**, 2 chunks"
    assert lines["memo.docx"].startswith("**added**")
    assert lines["empty.txt"] == "**not added**: the file is empty (0 bytes)"
    assert lines["broken.pdf"].startswith("**not added**: corrupt PDF")
    assert lines["locked.pdf"] == "**not added**: the PDF is encrypted with a password"
    assert lines["scan.pdf"].startswith("**not added**: no extractable text (a scanned PDF?")
    assert lines["binary.txt"].startswith("**not added**: binary data")
    assert lines["page.pdf"] == "**not added**: not a PDF (no %PDF- header)"
    assert lines["big.txt"].startswith("**not added**: the file is 0.1 MB, over the limit")
    assert lines["tool.exe"].startswith("**not added**: unsupported file type '.exe'")

    kb = ingestor.kb
    documents = await kb.list_documents(AccessScope.everything())
    assert {d.source for d in documents} == {"zebra.pdf", "memo.docx", "café.txt"}
    assert {(d.owner, d.chat_id) for d in documents} == {("alice", "chat-1")}
    assert await kb.list_documents(AccessScope.for_user("bob")) == []
    cafe = sorted(await hits(kb, "café.txt"), key=lambda h: h.chunk)
    assert "".join(h.text for h in cafe).startswith("Le café du quartier")
    assert sorted(h.page or 0 for h in await hits(kb, "zebra.pdf")) == [1, 2]


async def test_same_file_twice_then_a_changed_version(
    ingestor: Ingestor, tmp_path: Path, chainlit_events: RecordingEmitter
) -> None:
    v1 = attach(tmp_path, "notes.md", b"# Notes\n\nFirst version of the notes.")
    kwargs: dict[str, Any] = {"max_files": 5, "owner": "bob", "chat_id": "c"}
    assert [o.status for o in await ingest_uploads(ingestor, [v1], **kwargs)] == ["added"]
    again = await ingest_uploads(ingestor, [v1], **kwargs)
    assert again[0].status == "unchanged"
    assert report_lines(chainlit_events)["notes.md"].startswith("**already in the knowledge base")
    v2 = attach(tmp_path, "notes.md", b"# Notes\n\nSecond version, rewritten.")
    v2.path = str(write(tmp_path / "v2.bin", b"# Notes\n\nSecond version, rewritten."))
    assert (await ingest_uploads(ingestor, [v2], **kwargs))[0].status == "replaced"
    # split on its headings: the chunk is led by its heading path, "Notes"
    assert [h.text for h in await hits(ingestor.kb, "notes.md")] == [
        "Notes\n\nSecond version, rewritten."
    ]


async def test_too_many_files_and_duplicate_names_are_refused(
    ingestor: Ingestor, tmp_path: Path, chainlit_events: RecordingEmitter
) -> None:
    files = [attach(tmp_path, f"f{i}.txt", f"file {i}".encode()) for i in range(3)]
    files.append(attach(tmp_path, "f0.txt", b"other content, same name"))
    outcomes = await ingest_uploads(ingestor, files, max_files=2, owner="x", chat_id="c")
    assert [o.source for o in outcomes] == ["f0.txt", "f1.txt"]
    lines = report_lines(chainlit_events)
    assert lines["f2.txt"] == "**not added**: at most 2 files per message"
    assert await ingestor.kb.count(AccessScope.everything()) == 2


async def test_a_failed_write_leaves_nothing_and_says_so(
    ingestor: Ingestor,
    tmp_path: Path,
    chainlit_events: RecordingEmitter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await ingest_uploads(
        ingestor,
        [attach(tmp_path, "warm.txt", b"warm")],
        max_files=5,
        owner="x",
        chat_id="c",
    )
    calls = 0
    real = ingestor.kb.add_chunks

    async def flaky(*args: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise ConnectionError("milvus went away")
        await real(*args)

    monkeypatch.setattr(ingestor.kb, "add_chunks", flaky)
    text = "".join(f"Sentence {i} of a long upload. " for i in range(100)).encode()
    outcome = (
        await ingest_uploads(
            ingestor,
            [attach(tmp_path, "long.txt", text)],
            max_files=5,
            owner="x",
            chat_id="c",
        )
    )[0]
    assert outcome.status == "failed"
    assert "partial chunks were removed" in report_lines(chainlit_events)["long.txt"]
    assert await hits(ingestor.kb, "long.txt") == []


async def test_the_upload_report_shows_file_names_literally(
    chainlit_events: RecordingEmitter,
) -> None:
    name = document_name("![s](https:HOST?x) `x`.txt")
    report = UploadReport([name], [("<img src=//HOST/i>.md", "binary data")])
    assert active_constructs(report.message.content) == []
    shown = visible_text(report.message.content)
    assert f"{name}: waiting" in shown
    assert "<img src=//HOST/i>.md: not added: binary data" in shown


def test_document_names_never_become_paths() -> None:
    assert document_name("../../etc/passwd.txt") == "passwd.txt"
    assert document_name("C:\\Users\\me\\report.pdf") == "report.pdf"
    assert document_name("bad\x00name\n.txt") == "badname.txt"
    assert document_name("...") == "upload"
    assert document_name(".hidden.md") == "hidden.md"
    long = document_name("a" * 500 + ".pdf")
    assert len(long) == 200 and long.endswith(".pdf")


class SlowKnowledgeBase(InMemoryKnowledgeBase):
    """Each batch takes a moment to write, so a large file is still going when a small
    one is done."""

    async def add_chunks(self, chunks: Sequence[ChunkRecord]) -> None:
        await asyncio.sleep(0.01)
        await super().add_chunks(chunks)


async def test_each_file_shows_its_result_as_soon_as_it_is_done(
    tmp_path: Path, chainlit_events: RecordingEmitter
) -> None:
    ingestor = Ingestor(
        SlowKnowledgeBase(), IngestOptions(chunk_size=100, chunk_overlap=0, batch_size=4)
    )
    big = "\n\n".join(f"Paragraph {i} " * 6 for i in range(300)).encode()
    files = [
        attach(tmp_path, "big.txt", big),
        attach(tmp_path, "small.txt", b"A short note."),
        attach(tmp_path, "empty.txt", b""),
    ]
    await ingest_uploads(ingestor, files, max_files=5, owner="x", chat_id="c")
    updates = [m["output"] for m in chainlit_events.of("update_message")]
    small_done = next(i for i, text in enumerate(updates) if "`small.txt`: **added**" in text)
    empty_done = next(i for i, text in enumerate(updates) if "`empty.txt`: **not added**" in text)
    # the small file's and the empty file's results were shown while the big one ran
    for index in (small_done, empty_done):
        big_line = next(line for line in updates[index].splitlines() if "`big.txt`" in line)
        assert "**" not in big_line  # still reading / embedding / storing, no result yet
    assert "`big.txt`: **added**" in updates[-1]


def test_a_failed_file_shows_the_chat_its_public_reason() -> None:
    failed = FileOutcome(
        "a.txt",
        "failed",
        reason="The embedding service has no model 'm' (HTTP 404). Set EMBEDDING_MODEL ...",
        public_reason="The embedding model is not available: tell the administrator.",
    )
    shown = outcome_line(failed)
    assert "tell the administrator" in shown and "EMBEDDING_MODEL" not in shown
    assert "is empty" in outcome_line(FileOutcome("b.txt", "failed", reason="the file is empty"))
