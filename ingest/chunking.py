"""Splitting page documents into chunks with stable ids and the metadata citations need.

HTML (already Markdown here, see `ingest.html_extraction`) and Markdown are split on their
headings first (`ingest.sections`) and each section on its own, so a chunk never straddles
two sections. Such a chunk starts with its heading path ("Coroutines and Tasks › Timeouts")
so that the path is embedded and matched with the text, and records it in its extras:
`title` (the page's) and `section` (the headings below it). Every chunk also records the
`ingest_version` that made it, so documents made by an older extractor or chunker can be
found and rebuilt (`python -m ingest --reindex`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from langchain_core.documents import Document
from langchain_text_splitters import Language, RecursiveCharacterTextSplitter

from core.knowledge import (
    HEADING_BREAK,
    INGEST_VERSION_FIELD,
    ChunkRecord,
    DocumentKey,
    MetadataValue,
    heading_path,
    led_by,
)
from ingest.html_extraction import EXTRACTOR
from ingest.sections import first_heading, split_sections

CHUNKER = "sections-1"
STRUCTURED_KINDS = frozenset({"html", "markdown"})


def ingest_version(chunk_size: int, chunk_overlap: int) -> str:
    """What made a document's chunks: the extractor, the chunker and its sizes. A stored
    document with another version is stale.

    >>> ingest_version(1000, 150)
    'trafilatura-4+sections-1+1000/150'
    """
    return f"{EXTRACTOR}+{CHUNKER}+{chunk_size}/{chunk_overlap}"


def content_hash(data: bytes, version: str) -> str:
    """The hash that tells one version of a document from another: the file's bytes and
    the `ingest_version` that chunks them, so that a new extractor or chunker makes a new
    version of an unchanged file (written whole before the old one goes)."""
    return hashlib.sha256(data + b"\0" + version.encode()).hexdigest()


def chunk_id(document: DocumentKey, file_hash: str, index: int) -> str:
    """Deterministic: the same file version of the same owner's document always yields
    the same ids (and two owners' identical files never share one).

    >>> ada, bob = DocumentKey("ada", "a.txt"), DocumentKey("bob", "a.txt")
    >>> chunk_id(ada, "h", 0) == chunk_id(ada, "h", 0) != chunk_id(bob, "h", 0)
    True
    """
    key = f"{document.owner}\n{document.source}\n{file_hash}\n{index}"
    return hashlib.sha256(key.encode()).hexdigest()[:40]


def make_splitter(kind: str, chunk_size: int, chunk_overlap: int) -> RecursiveCharacterTextSplitter:
    if kind == "markdown":
        return RecursiveCharacterTextSplitter.from_language(
            Language.MARKDOWN, chunk_size=chunk_size, chunk_overlap=chunk_overlap
        )
    return RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap)


@dataclass(frozen=True)
class Origin:
    """Where a file's chunks come from: whose document, which chat, when."""

    document: DocumentKey
    added_at: int
    chat_id: str | None = None


def split_pages(
    pages: list[Document],
    *,
    kind: str,
    origin: Origin,
    file_hash: str,
    chunk_size: int,
    chunk_overlap: int,
) -> list[ChunkRecord]:
    """Split each page on its own, so every chunk keeps its page number; loader metadata
    other than the page (an HTML title, for example) is kept as the chunk's extras, with
    the section path and the ingest version."""
    version = ingest_version(chunk_size, chunk_overlap)
    pieces: list[tuple[str, dict[str, object]]] = []
    for page in pages:
        if kind in STRUCTURED_KINDS:
            pieces.extend(_section_pieces(page, kind, chunk_size, chunk_overlap))
        else:
            splitter = make_splitter(kind, chunk_size, chunk_overlap)
            pieces.extend(
                (piece, page.metadata)
                for piece in splitter.split_text(page.page_content)
                if piece.strip()
            )
    return [
        ChunkRecord(
            id=chunk_id(origin.document, file_hash, index),
            text=text,
            document=origin.document,
            chunk=index,
            chunks=len(pieces),
            file_hash=file_hash,
            added_at=origin.added_at,
            page=_page(metadata),
            chat_id=origin.chat_id,
            extra={**_extras(metadata), INGEST_VERSION_FIELD: version},
        )
        for index, (text, metadata) in enumerate(pieces)
    ]


def _section_pieces(
    page: Document, kind: str, chunk_size: int, chunk_overlap: int
) -> list[tuple[str, dict[str, object]]]:
    """A structured page's chunks, each led by its heading path (counted in the size
    unless the path is over half of it), with its metadata."""
    title = str(page.metadata.get("title") or first_heading(page.page_content) or "")
    pieces: list[tuple[str, dict[str, object]]] = []
    for section in split_sections(page.page_content, title=title):
        heading = section.heading(title)
        metadata = {**page.metadata, "title": title, "section": heading_path(*section.path)}
        body_size = max(chunk_size - len(heading) - len(HEADING_BREAK), chunk_size // 2)
        splitter = make_splitter(kind, body_size, min(chunk_overlap, body_size // 2))
        for piece in splitter.split_text(section.text):
            if piece.strip():
                pieces.append((led_by(heading, piece), metadata))
    return pieces


def _page(metadata: dict[str, object]) -> int | None:
    page = metadata.get("page")
    return page if isinstance(page, int) else None


def _extras(metadata: dict[str, object]) -> dict[str, MetadataValue]:
    return {
        key: value
        for key, value in metadata.items()
        if key != "page" and isinstance(value, str | int | float | bool)
    }
