"""Splitting page documents into chunks with stable ids and the metadata citations need."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from langchain_core.documents import Document
from langchain_text_splitters import Language, RecursiveCharacterTextSplitter

from core.knowledge import ChunkRecord, DocumentKey, MetadataValue


def content_hash(data: bytes) -> str:
    """The hash that tells one version of a file from another."""
    return hashlib.sha256(data).hexdigest()


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
    other than the page (an HTML title, for example) is kept as the chunk's extras."""
    splitter = make_splitter(kind, chunk_size, chunk_overlap)
    pieces = [
        (piece, page.metadata)
        for page in pages
        for piece in splitter.split_text(page.page_content)
        if piece.strip()
    ]
    return [
        ChunkRecord(
            id=chunk_id(origin.document, file_hash, index),
            text=text,
            document=origin.document,
            chunk=index,
            chunks=len(pieces),
            file_hash=file_hash,
            added_at=origin.added_at,
            page=page_metadata.get("page"),
            chat_id=origin.chat_id,
            extra=_extras(page_metadata),
        )
        for index, (text, page_metadata) in enumerate(pieces)
    ]


def _extras(metadata: dict[str, object]) -> dict[str, MetadataValue]:
    return {
        key: value
        for key, value in metadata.items()
        if key != "page" and isinstance(value, str | int | float | bool)
    }
