import codecs

import pytest

from core.errors import UnreadableFile
from core.knowledge import MARKDOWN_SUFFIXES
from ingest.loaders import SUFFIX_KINDS, decode_text, kind_for, load_bytes
from tests.samples import BINARY_BYTES, CORRUPT_PDF, docx_bytes, encrypted_pdf_bytes, pdf_bytes


def test_kinds_by_suffix() -> None:
    assert kind_for("a.PDF") == "pdf"
    assert kind_for("notes.md") == "markdown"
    assert kind_for("page.htm") == "html"
    assert kind_for("report.docx") == "docx"
    assert kind_for("image.png") is None


def test_text_file() -> None:
    loaded = load_bytes(b"Hello, world.\nSecond line.", "a.txt")
    assert loaded.kind == "text"
    assert [p.page_content for p in loaded.pages] == ["Hello, world.\nSecond line."]


def test_pdf_keeps_page_numbers() -> None:
    loaded = load_bytes(pdf_bytes(["First page text", "", "Third page text"]), "doc.pdf")
    assert [(p.metadata["page"], p.page_content.strip()) for p in loaded.pages] == [
        (1, "First page text"),
        (3, "Third page text"),
    ]


def test_docx() -> None:
    loaded = load_bytes(docx_bytes(["Alpha paragraph.", "Beta paragraph."]), "w.docx")
    assert "Alpha paragraph." in loaded.pages[0].page_content
    assert "Beta paragraph." in loaded.pages[0].page_content


def test_html_drops_scripts_and_keeps_title() -> None:
    html = (
        "<html><head><title>T</title><script>alert('x')</script><style>p{}</style></head>"
        "<body><h1>Heading</h1><p>Body text.</p></body></html>"
    )
    page = load_bytes(html.encode(), "p.html").pages[0]
    assert "Heading" in page.page_content and "Body text." in page.page_content
    assert "alert" not in page.page_content and "p{}" not in page.page_content
    assert page.metadata == {"title": "Heading"}  # the first heading, over <title>


@pytest.mark.parametrize(
    ("data", "name", "reason"),
    [
        (b"", "empty.txt", "empty (0 bytes)"),
        (b"  \n\t ", "blank.md", "only whitespace"),
        (CORRUPT_PDF, "broken.pdf", "corrupt PDF"),
        (b"just text pretending", "fake.pdf", "not a PDF"),
        (pdf_bytes(["", ""]), "scanned.pdf", "no extractable text (a scanned PDF?"),
        (BINARY_BYTES, "binary.txt", "binary data"),
        (b"PK\x03\x04not really a zip", "bad.docx", "corrupt .docx"),
        (b"plain text", "not-a-zip.docx", "not a Word .docx file"),
        (b"data", "image.png", "unsupported file type '.png'"),
    ],
)
def test_bad_files_get_a_reason(data: bytes, name: str, reason: str) -> None:
    with pytest.raises(UnreadableFile) as info:
        load_bytes(data, name)
    assert reason in str(info.value)


def test_encrypted_pdf() -> None:
    with pytest.raises(UnreadableFile, match="encrypted"):
        load_bytes(encrypted_pdf_bytes("secret text"), "locked.pdf")


def test_non_utf8_text_is_decoded() -> None:
    text = "Le café était très animé ce soir-là, déjà plein à craquer. " * 5
    assert decode_text(text.encode("cp1252")) == text
    assert decode_text(codecs.BOM_UTF16_LE + text.encode("utf-16-le")) == text
    assert decode_text(codecs.BOM_UTF8 + "naïve".encode()) == "naïve"
    russian = "Привет, это тестовый документ о векторном поиске и базах данных. " * 3
    assert decode_text(russian.encode("cp1251")) == russian
    japanese = "これは日本語のテスト文書です。ベクトル検索について説明します。" * 3
    assert decode_text(japanese.encode("shift_jis")) == japanese


def test_the_files_shown_as_markdown_are_those_stored_as_markdown() -> None:
    """Citations format the text of these (`core.knowledge.MARKDOWN_SUFFIXES`)."""
    stored_as_markdown = {s for s, kind in SUFFIX_KINDS.items() if kind in ("markdown", "html")}
    assert stored_as_markdown == MARKDOWN_SUFFIXES
