"""Turning one file's bytes into page-level LangChain documents.

The declared type (extension, browser MIME) is only a hint: the bytes are checked before
any parser sees them. Everything here is synchronous and CPU-bound; callers run it in a
worker thread.
"""

from __future__ import annotations

import codecs
import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from charset_normalizer import from_bytes
from langchain_core.documents import Document

from core.errors import UnreadableFile
from ingest.html_extraction import extract_main_content
from ingest.limits import ParseLimits, PdfContentBudget, TextBudget, check_docx_archive

SUFFIX_KINDS: dict[str, str] = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".pdf": "pdf",
    ".html": "html",
    ".htm": "html",
    ".docx": "docx",
}
SUPPORTED_SUFFIXES = frozenset(SUFFIX_KINDS)

_BOMS = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_BLANK_RUNS = re.compile(r"\n\s*\n\s*\n+")


@dataclass(frozen=True)
class LoadedFile:
    """A parsed file: its kind, its pages (one document for unpaged formats) and bytes."""

    kind: str
    pages: list[Document]
    size: int


def kind_for(name: str) -> str | None:
    """The format a file name claims, or None when we don't ingest that type."""
    return SUFFIX_KINDS.get(Path(name).suffix.lower())


def load_bytes(data: bytes, name: str, limits: ParseLimits | None = None) -> LoadedFile:
    """Parse `data`, which claims to be the file `name`, into page documents.

    Raises `UnreadableFile` with a reason a person can act on, also when the file
    would expand past `limits` (`ingest.limits`).
    """
    limits = limits or ParseLimits()
    kind = kind_for(name)
    if kind is None:
        supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise UnreadableFile(
            f"unsupported file type '{Path(name).suffix}' (supported: {supported})"
        )
    if not data:
        raise UnreadableFile("the file is empty (0 bytes)")
    if not data.strip():
        raise UnreadableFile("the file holds only whitespace")
    if kind == "pdf":
        pages = _load_pdf(data, limits)
    elif kind == "docx":
        pages = _load_docx(data, limits)
    elif kind == "html":
        pages = [_load_html(decode_text(data))]
    else:
        pages = [Document(page_content=decode_text(data))]
    TextBudget(limits).check_document(sum(len(p.page_content) for p in pages))
    pages = [p for p in pages if p.page_content.strip()]
    if not pages:
        hint = " (a scanned PDF? run OCR on it first)" if kind == "pdf" else ""
        raise UnreadableFile(f"no extractable text{hint}")
    return LoadedFile(kind=kind, pages=pages, size=len(data))


def decode_text(data: bytes) -> str:
    """Decode text in UTF-8, or the encoding detected when it is not; reject binary data."""
    if b"\x00" in data[:8192] and not data.startswith(_BOMS):
        raise UnreadableFile("binary data, not text (it contains NUL bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        matches = from_bytes(data)
        # Short Western text often scores as some rarer code page; prefer Windows-1252,
        # by far the most common legacy encoding, whenever it reads cleanly.
        western = next(
            (m for m in matches if "cp1252" in m.could_be_from_charset and m.chaos <= 0.2), None
        )
        match = western or matches.best()
        if match is None:
            raise UnreadableFile("not text in any encoding we can detect") from None
        text = str(match)
    printable = sum(1 for ch in text if ch.isprintable() or ch in "\n\r\t\f")
    if text and printable / len(text) < 0.95:
        raise UnreadableFile("binary data, not text")
    return text


def _load_pdf(data: bytes, limits: ParseLimits) -> list[Document]:
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, PdfReadError

    if b"%PDF-" not in data[:1024]:
        raise UnreadableFile("not a PDF (no %PDF- header)")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnreadableFile("the PDF is encrypted with a password")
        content = PdfContentBudget(limits)
        text = TextBudget(limits)
        pages = []
        for number, page in enumerate(reader.pages, start=1):
            content.check_page(page, number)
            text.start_page(number)
            extracted = page.extract_text(visitor_text=lambda part, *_: text.add(len(part)))
            pages.append(Document(page_content=extracted or "", metadata={"page": number}))
        return pages
    except FileNotDecryptedError:
        raise UnreadableFile("the PDF is encrypted with a password") from None
    except (UnreadableFile, MemoryError):
        raise
    except PdfReadError as exc:
        raise UnreadableFile(f"corrupt PDF ({exc})") from None
    except Exception as exc:  # pypdf raises many types on broken files
        raise UnreadableFile(f"corrupt PDF ({type(exc).__name__}: {exc})") from None


def _load_docx(data: bytes, limits: ParseLimits) -> list[Document]:
    import docx2txt

    if not data.startswith(b"PK\x03\x04"):
        raise UnreadableFile("not a Word .docx file (not a ZIP container)")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if "word/document.xml" not in archive.namelist():
                raise UnreadableFile("not a Word .docx file (no word/document.xml)")
            check_docx_archive(archive, limits)
        text = docx2txt.process(io.BytesIO(data))
    except (UnreadableFile, MemoryError):
        raise
    except Exception as exc:  # zipfile / XML errors on damaged files
        raise UnreadableFile(f"corrupt .docx ({type(exc).__name__}: {exc})") from None
    return [Document(page_content=_BLANK_RUNS.sub("\n\n", text).strip())]


def _load_html(text: str) -> Document:
    """The page's main content as Markdown, with its title (see `ingest.html_extraction`)."""
    page = extract_main_content(text)
    metadata = {"title": page.title} if page.title else {}
    return Document(page_content=page.markdown, metadata=metadata)
