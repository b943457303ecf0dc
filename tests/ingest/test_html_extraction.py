"""HTML extraction and structure-aware chunking on real pages: five pages of Python
3.11's library reference as Debian's python3.11-doc ships them (tests/ingest/pages/,
Sphinx output with its sidebar, breadcrumbs, "Previous / Next topic", "Report a Bug" and
footer)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.knowledge import DocumentKey
from ingest.chunking import Origin, split_pages
from ingest.html_extraction import extract_main_content
from ingest.loaders import load_bytes

PAGES = Path(__file__).parent / "pages"
CHROME = [
    "Previous topic",
    "Next topic",
    "Report a Bug",
    "Show Source",
    "Quick search",
    "Table of Contents",
    "Navigation",
    "Copyright",
    "Python Software Foundation",
    "Found a bug?",
]


def page(name: str) -> str:
    return (PAGES / name).read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(path.name for path in PAGES.glob("*.html")))
def test_page_chrome_is_gone(name: str) -> None:
    html = page(name)
    assert all(marker in html for marker in ("Previous topic", "Report a Bug", "Quick search"))
    text = extract_main_content(html).markdown
    assert [marker for marker in CHROME if marker in text] == []
    assert "¶" not in text  # the headings' permalink marks


def test_a_definition_whose_sentence_is_a_cross_reference_is_kept() -> None:
    """trafilatura dropped short blocks that are mostly link, like these three (their
    cross-reference is a link), as it drops menus."""
    text = extract_main_content(page("cmath.html")).markdown
    assert "Return the square root of *x*. This has the same branch cut as `log()`." in text
    assert "Return the base-10 logarithm of *x*. This has the same branch cut as `log()`." in text
    assert "Return the arc sine of *x*. This has the same branch cuts as `acos()`." in text


def test_a_footnote_is_kept_and_an_aside_that_is_not_one_is_not() -> None:
    """Sphinx puts footnotes in <aside> elements, which trafilatura dropped as sidebars."""
    text = " ".join(extract_main_content(page("marshal.html")).markdown.split())
    assert "Footnotes The name of this module stems from a bit of terminology" in text
    sidebar = (
        "<html><body><main><h1>Title</h1><p>"
        + "The page's own text, long enough to be its main content. " * 8
        + "</p><aside class='related'><p>Read our other article on a nearby subject.</p>"
        "</aside></main></body></html>"
    )
    assert "nearby subject" not in extract_main_content(sidebar).markdown


def test_inline_tags_are_joined_into_running_text() -> None:
    text = extract_main_content(page("fnmatch.html")).markdown
    # <em>, <code> and <a> inside a sentence stay inside it (the old loader put each on
    # a line of its own), and Markdown's escapes are undone (`fnmatch.fnmatch`, not `\_`).
    assert (
        "Test whether the *filename* string matches the *pattern* string, returning "
        "`True` or `False`." in text
    )
    assert "`functools.lru_cache()` with the *maxsize* of 32768" in text
    assert "\\_" not in text and "fnmatch.fnmatch(" in text
    lines = text.splitlines()
    # no inline element alone on a line (the old loader's `shlex.\nsplit\n(\ns\n,`)
    assert not [line for line in lines if re.fullmatch(r"\W*[`*][^`*]+[`*]\W*", line)]


def test_headings_are_kept_as_structure() -> None:
    extracted = extract_main_content(page("asyncio-runner.html"))
    assert extracted.title == "Runners"
    headings = [line for line in extracted.markdown.splitlines() if line.startswith("#")]
    assert headings == [
        "# Runners",
        "## Running an asyncio Program",
        "## Runner context manager",
        "## Handling Keyboard Interruption",
    ]


def test_chunks_stay_in_their_section_and_carry_its_path() -> None:
    loaded = load_bytes((PAGES / "asyncio-runner.html").read_bytes(), "asyncio-runner.html")
    origin = Origin(DocumentKey("@library", "asyncio-runner.html"), added_at=1)
    chunks = split_pages(
        loaded.pages,
        kind=loaded.kind,
        origin=origin,
        file_hash="h",
        chunk_size=500,
        chunk_overlap=50,
    )
    sections = {c.extra["section"] for c in chunks}
    assert sections == {
        "",
        "Running an asyncio Program",
        "Runner context manager",
        "Handling Keyboard Interruption",
    }
    assert {c.extra["title"] for c in chunks} == {"Runners"}
    for chunk in chunks:
        section = str(chunk.extra["section"])
        heading = f"Runners › {section}" if section else "Runners"
        assert chunk.text.startswith(heading + "\n\n")  # embedded and matched with the text
        assert len(chunk.text) <= 500
        others = sections - {section, ""}
        # no chunk straddles two sections: no other section's heading inside its body
        assert not [s for s in others if f"## {s}" in chunk.text]
    runner = [c for c in chunks if c.extra["section"] == "Runner context manager"]
    assert "A context manager that simplifies *multiple* async function calls" in runner[0].text


def test_markdown_files_are_split_on_their_headings_too() -> None:
    text = (
        "# Guide\n\nIntro.\n\n## Install\n\n```sh\n# not a heading\npip install x\n```\n\n"
        "## Use\n\n### Options\n\nSet `k`.\n"
    )
    origin = Origin(DocumentKey("@library", "guide.md"), added_at=1)
    loaded = load_bytes(text.encode(), "guide.md")
    chunks = split_pages(
        loaded.pages,
        kind=loaded.kind,
        origin=origin,
        file_hash="h",
        chunk_size=200,
        chunk_overlap=0,
    )
    assert [(c.extra["section"], c.text) for c in chunks] == [
        ("", "Guide\n\nIntro."),
        ("Install", "Guide › Install\n\n```sh\n# not a heading\npip install x\n```"),
        ("Use › Options", "Guide › Use › Options\n\nSet `k`."),
    ]
