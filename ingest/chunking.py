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
import re
from dataclasses import dataclass

from langchain_core.documents import Document
from langchain_text_splitters import Language, RecursiveCharacterTextSplitter

from core.knowledge import INGEST_VERSION_FIELD, ChunkRecord, DocumentKey, MetadataValue
from ingest.html_extraction import EXTRACTOR
from ingest.sections import SEPARATOR, first_heading, split_sections

CHUNKER = "sections-2"
STRUCTURED_KINDS = frozenset({"html", "markdown"})


def ingest_version(chunk_size: int, chunk_overlap: int) -> str:
    """What made a document's chunks: the extractor, the chunker and its sizes. A stored
    document with another version is stale.

    >>> ingest_version(1000, 150)
    'trafilatura-2+sections-2+1000/150'
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


# Within a section: paragraphs, code blocks, then sentence ends (a line or a space after
# ".:!?"), and only then any line break. Extracted pages keep their source's hard line
# wraps, so splitting on any line break first cut chunks mid-sentence.
_SECTION_SEPARATORS = ["\n\n", "\n(?=```)", r"(?<=[.:!?])\n", r"(?<=[.:!?]) ", "\n", " ", ""]
# How extracted definition lists (`<dt>` / `<dd>`: a reference's functions, classes,
# options) look in the Markdown: an empty item, the term's line, its definition as an item.
_DEFINITION_TERM = re.compile(r"^-[ \t]*\n([^\n]+)\n(?=- )", re.MULTILINE)


def _section_splitter(
    kind: str, chunk_size: int, chunk_overlap: int
) -> RecursiveCharacterTextSplitter:
    return RecursiveCharacterTextSplitter(
        separators=_SECTION_SEPARATORS,
        is_separator_regex=True,
        keep_separator="end",
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        add_start_index=True,
    )


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
    unless the path is over half of it), with its metadata. A chunk that continues a
    definition (a function's or class's entry in a reference) also names the definition's
    term in its lead line, which the headings above it do not."""
    title = str(page.metadata.get("title") or first_heading(page.page_content) or "")
    pieces: list[tuple[str, dict[str, object]]] = []
    for section in split_sections(page.page_content, title=title):
        heading = section.heading(title)
        metadata = {**page.metadata, "title": title, "section": SEPARATOR.join(section.path)}
        terms = [(m.start(1), _plain(m.group(1))) for m in _DEFINITION_TERM.finditer(section.text)]
        lead_size = len(heading) + max((len(SEPARATOR) + len(t) for _, t in terms), default=0)
        body_size = max(chunk_size - lead_size - 2, chunk_size // 2)
        splitter = _section_splitter(kind, body_size, min(chunk_overlap, body_size // 2))
        for doc in splitter.create_documents([section.text]):
            piece = doc.page_content
            if not piece.strip():
                continue
            start = int(doc.metadata["start_index"])
            term = next((t for at, t in reversed(terms) if at < start), None)
            lead = SEPARATOR.join(part for part in (heading, term) if part)
            pieces.append((f"{lead}\n\n{piece}" if lead else piece, metadata))
    return pieces


def _plain(term: str) -> str:
    """A definition's term without its parameters or Markdown emphasis.

    >>> _plain("@functools.lru_cache(*maxsize=128*, *typed=False*)"), _plain("*class* io.StringIO")
    ('@functools.lru_cache', 'class io.StringIO')
    """
    return term.split("(", 1)[0].replace("*", "").strip()[:100]


def _page(metadata: dict[str, object]) -> int | None:
    page = metadata.get("page")
    return page if isinstance(page, int) else None


def _extras(metadata: dict[str, object]) -> dict[str, MetadataValue]:
    return {
        key: value
        for key, value in metadata.items()
        if key != "page" and isinstance(value, str | int | float | bool)
    }
