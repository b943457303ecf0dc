"""Limits that keep one uploaded file from exhausting the machine (decompression bombs,
pathological PDFs, one endless line of text).

Checked before the expensive step, never after it:

- DOCX: every ZIP member's declared size and compression ratio, before anything inflates;
- PDF: each page's decoded drawing instructions before pypdf parses them (a small file
  can make every page share one huge stream), and characters per page and per file
  counted while the text is extracted, stopping at the limit;
- every format: characters per document, and chunks per document estimated before
  splitting and counted after.

The whole parse also runs in a worker process (`ingest.sandbox`) with a CPU-time budget
and a memory cap, for whatever these checks do not foresee. Every refusal is an
`UnreadableFile` whose message names the limit, so the upload report says why.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from typing import Any

from core.errors import UnreadableFile
from core.settings import Settings

MIB = 1024 * 1024
_SETTINGS = Settings.model_fields


@dataclass(frozen=True)
class ParseLimits:
    """How much one file may expand to; the defaults are `Settings`' defaults."""

    max_document_chars: int = _SETTINGS["max_document_chars"].default
    max_chunks: int = _SETTINGS["max_chunks_per_document"].default
    cpu_seconds: float = _SETTINGS["parse_cpu_seconds"].default
    memory_bytes: int = _SETTINGS["parse_memory_mb"].default * MIB
    # A dense printed page holds about 5,000 characters.
    max_page_chars: int = 100_000
    # Decoded drawing instructions of one PDF page, and of all pages together (pages
    # that share a stream count it each time: pypdf parses it for each).
    max_pdf_page_content_bytes: int = 4 * MIB
    max_pdf_content_bytes: int = 32 * MIB
    # ZIP members of a .docx: inflated size of one and of all, and the inflated /
    # compressed ratio (Word's XML compresses about 5-15 times; bombs 1,000 times).
    max_docx_member_bytes: int = 64 * MIB
    max_docx_total_bytes: int = 128 * MIB
    max_docx_ratio: float = 100.0
    docx_ratio_floor_bytes: int = MIB  # smaller members may compress as they like

    @classmethod
    def from_settings(cls, settings: Settings) -> ParseLimits:
        return cls(
            max_document_chars=settings.max_document_chars,
            max_chunks=settings.max_chunks_per_document,
            cpu_seconds=settings.parse_cpu_seconds,
            memory_bytes=settings.parse_memory_mb * MIB,
        )


def _mb(size: int) -> str:
    return f"{size / MIB:.1f} MB"


def check_docx_archive(archive: zipfile.ZipFile, limits: ParseLimits) -> None:
    """Refuse a .docx whose members would inflate too far, from the sizes the archive
    declares (nothing is inflated here; zipfile stops reading a member at its declared
    size, so a member cannot lie its way past this)."""
    total = 0
    for info in archive.infolist():
        size = info.file_size
        total += size
        if size > limits.max_docx_member_bytes:
            raise UnreadableFile(
                f"refused: '{info.filename}' inside the .docx would inflate to {_mb(size)}, "
                f"over the limit of {_mb(limits.max_docx_member_bytes)} (a decompression bomb?)"
            )
        ratio = size / max(info.compress_size, 1)
        if size > limits.docx_ratio_floor_bytes and ratio > limits.max_docx_ratio:
            raise UnreadableFile(
                f"refused: '{info.filename}' inside the .docx is compressed {ratio:.0f} to 1, "
                f"over the limit of {limits.max_docx_ratio:.0f} to 1 (a decompression bomb?)"
            )
    if total > limits.max_docx_total_bytes:
        raise UnreadableFile(
            f"refused: the .docx would inflate to {_mb(total)}, over the limit of "
            f"{_mb(limits.max_docx_total_bytes)}"
        )


class TextBudget:
    """Counts extracted characters per page and per document; raises at the limit."""

    def __init__(self, limits: ParseLimits) -> None:
        self.limits = limits
        self.document_chars = 0
        self.page_chars = 0
        self.page = 0

    def start_page(self, number: int) -> None:
        self.page = number
        self.page_chars = 0

    def add(self, count: int) -> None:
        self.page_chars += count
        self.document_chars += count
        if self.page_chars > self.limits.max_page_chars:
            raise UnreadableFile(
                f"refused: page {self.page} holds over {self.limits.max_page_chars:,} "
                "characters of text (a page has a few thousand; a crafted PDF?)"
            )
        self.check_document(self.document_chars)

    def check_document(self, chars: int) -> None:
        if chars > self.limits.max_document_chars:
            raise UnreadableFile(
                f"refused: the text is over {self.limits.max_document_chars:,} characters, "
                "the limit per document (MAX_DOCUMENT_CHARS); split it into smaller files"
            )


class PdfContentBudget:
    """Bounds the drawing instructions pypdf will parse, page by page, before it does."""

    def __init__(self, limits: ParseLimits) -> None:
        self.limits = limits
        self.total = 0

    def check_page(self, page: Any, number: int) -> None:
        contents = page.get_contents()
        size = len(contents.get_data()) if contents is not None else 0
        if size > self.limits.max_pdf_page_content_bytes:
            raise UnreadableFile(
                f"refused: page {number}'s drawing instructions decompress to {_mb(size)}, "
                f"over the limit of {_mb(self.limits.max_pdf_page_content_bytes)} per page "
                "(a decompression bomb?)"
            )
        self.total += size
        if self.total > self.limits.max_pdf_content_bytes:
            raise UnreadableFile(
                f"refused: the pages' drawing instructions decompress to over "
                f"{_mb(self.limits.max_pdf_content_bytes)} in all (pages sharing one huge "
                "stream?)"
            )


def check_chunk_estimate(chars: int, chunk_size: int, chunk_overlap: int, max_chunks: int) -> None:
    """Refuse before splitting when the text cannot fit in `max_chunks` chunks (each
    chunk adds at most `chunk_size - chunk_overlap` new characters)."""
    least = chars // max(chunk_size - chunk_overlap, 1)
    if least > max_chunks:
        raise too_many_chunks(least, max_chunks)


def check_chunk_count(count: int, max_chunks: int) -> None:
    if count > max_chunks:
        raise too_many_chunks(count, max_chunks)


def too_many_chunks(count: int, max_chunks: int) -> UnreadableFile:
    return UnreadableFile(
        f"refused: it would make {count:,} chunks, over the limit of {max_chunks:,} per "
        "document (MAX_CHUNKS_PER_DOCUMENT); split it into smaller files"
    )
