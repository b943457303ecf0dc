"""Splitting page documents into chunks with stable ids and the metadata citations need."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from langchain_core.documents import Document
from langchain_text_splitters import Language, RecursiveCharacterTextSplitter


@dataclass(frozen=True)
class Chunk:
    id: str
    text: str
    metadata: dict[str, Any]


def content_hash(data: bytes) -> str:
    """The hash that tells one version of a file from another."""
    return hashlib.sha256(data).hexdigest()


def chunk_id(source: str, file_hash: str, index: int) -> str:
    """Deterministic: the same file version always yields the same ids."""
    return hashlib.sha256(f"{source}\n{file_hash}\n{index}".encode()).hexdigest()[:40]


def make_splitter(kind: str, chunk_size: int, chunk_overlap: int) -> RecursiveCharacterTextSplitter:
    if kind == "markdown":
        return RecursiveCharacterTextSplitter.from_language(
            Language.MARKDOWN, chunk_size=chunk_size, chunk_overlap=chunk_overlap
        )
    return RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap)


def split_pages(
    pages: list[Document],
    *,
    kind: str,
    source: str,
    file_hash: str,
    chunk_size: int,
    chunk_overlap: int,
    extra_metadata: dict[str, Any] | None = None,
) -> list[Chunk]:
    """Split each page on its own, so every chunk keeps its page number.

    Metadata: `source`, `page` (paged formats only), `chunk` (index in the file),
    `chunks` (how many the file has), `file_hash`, plus `extra_metadata`.
    """
    splitter = make_splitter(kind, chunk_size, chunk_overlap)
    pieces = [
        (piece, page.metadata)
        for page in pages
        for piece in splitter.split_text(page.page_content)
        if piece.strip()
    ]
    chunks = []
    for index, (text, page_metadata) in enumerate(pieces):
        metadata: dict[str, Any] = {
            **page_metadata,
            **(extra_metadata or {}),
            "source": source,
            "chunk": index,
            "chunks": len(pieces),
            "file_hash": file_hash,
        }
        chunks.append(Chunk(id=chunk_id(source, file_hash, index), text=text, metadata=metadata))
    return chunks
