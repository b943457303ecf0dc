"""The main content of an HTML page, as Markdown with its headings.

Extraction is trafilatura's: it drops navigation, tables of contents, breadcrumbs,
"previous / next" links and footers, and joins inline tags into running text. On the
benchmark corpus (61 pages of Python's library reference, see bench/README.md) it keeps 99%
of the pages' main text and every API definition, with under 1% from elsewhere;
readability-lxml kept 61%.

Two things are prepared before it runs (`_prepared`). Links inside running text become
plain text: trafilatura drops short blocks that are mostly links, as menus are, and that
dropped definitions whose one sentence cross-references another. Footnotes and endnotes
marked up as `<aside>` (Sphinx, pandoc) become ordinary blocks: trafilatura drops every
`<aside>` as a sidebar, and with it what a page says in its notes. Its Markdown keeps headings as
`#` lines, which the chunker splits on (`ingest.sections`). Two things are undone
afterwards: Markdown's backslash escapes (`create\\_task` is stored as `create_task`, so
keyword search and readers see the identifier), and the permalink marks documentation
generators put after headings and definitions ("¶").

>>> page = extract_main_content(
...     "<html><head><title>Demo - Docs</title></head><body>"
...     "<nav><a href='/'>Home</a> &gt; <a href='/lib'>Library</a></nav>"
...     "<main><h1>Demo<a class='headerlink' href='#demo'>¶</a></h1>"
...     "<p>Call <code>shlex.split(s)</code> to split <em>s</em> like a shell would.</p>"
...     "<h2>Quoting</h2><p>Use <code>shlex.quote</code> for the reverse, one word per call."
...     "</p></main><footer>© Copyright 2001 Someone.</footer></body></html>"
... )
>>> page.title
'Demo'
>>> print(page.markdown)
# Demo
<BLANKLINE>
Call `shlex.split(s)` to split *s* like a shell would.
<BLANKLINE>
## Quoting
<BLANKLINE>
Use `shlex.quote` for the reverse, one word per call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ingest.sections import first_heading

if TYPE_CHECKING:
    from lxml.html import HtmlElement

EXTRACTOR = "trafilatura-4"
"""Names the extraction for the chunks' recorded ingest version (see `ingest.versions`)."""

# CommonMark's backslash escapes: a backslash before ASCII punctuation.
_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_DOCUMENT = re.compile(r"<(html|body)[\s>]", re.IGNORECASE)
_PERMALINK = re.compile(r"[ \t]*¶[ \t]*$", re.MULTILINE)
_TEXT_BLOCKS = frozenset(
    ("p", "dd", "dt", "li", "td", "th", "blockquote", "figcaption", "caption")
    + tuple(f"h{level}" for level in range(1, 7))
)
# What marks an <aside> as a page's notes (DPUB-ARIA roles; Sphinx's and pandoc's classes).
_NOTE_ROLES = frozenset(("note", "doc-footnote", "doc-endnote", "doc-endnotes"))
_NOTE_CLASS = re.compile(r"(?:^|[\s-])(?:footnotes?|endnotes?)(?:$|[\s-])")
_CONTAINERS = frozenset(
    ("div", "section", "article", "main", "aside", "nav", "header", "footer", "body")
    + ("ul", "ol", "dl", "table")
)


@dataclass(frozen=True)
class ExtractedPage:
    """A page's title (its first top-level heading, else its `<title>`) and main content."""

    title: str
    markdown: str


def extract_main_content(html: str) -> ExtractedPage:
    """The page's main content as Markdown (headings, paragraphs, lists, code, tables).

    A page trafilatura finds no main content in (a bare fragment, a page of one line) is
    taken whole, as text. CPU-bound: run it in a worker thread.
    """
    import trafilatura

    document = html if _DOCUMENT.search(html) else f"<html><body>{html}</body></html>"
    markdown = trafilatura.extract(
        _prepared(document),
        output_format="markdown",
        include_formatting=True,  # keeps the headings as Markdown headings
        include_tables=True,
        include_links=False,
        include_images=False,
        include_comments=False,
        favor_recall=True,  # reference pages are mostly definitions, not prose
        deduplicate=False,
    )
    if markdown:
        markdown = _PERMALINK.sub("", _ESCAPE.sub(r"\1", markdown)).strip()
    else:
        markdown = trafilatura.html2txt(document).strip()
    title = first_heading(markdown) or _html_title(document)
    return ExtractedPage(title=title, markdown=markdown)


def _prepared(document: str) -> HtmlElement:
    """The parsed page, ready for trafilatura: notes as content, links in prose as text."""
    from lxml.html import document_fromstring

    root = document_fromstring(document)
    _notes_as_content(root)
    _links_in_prose_as_text(root)
    return root


def _notes_as_content(root: HtmlElement) -> None:
    """Footnotes and endnotes in `<aside>` elements become `<div>`s.

    trafilatura drops `<aside>` as sidebar chrome; Sphinx puts footnotes in one (csv's
    "If newline='' is not specified, newlines embedded inside quoted fields will not be
    interpreted correctly"), as pandoc does endnotes. Only asides whose role or class say
    they hold notes change; other asides stay for trafilatura to judge.
    """
    for aside in list(root.iter("aside")):
        role = aside.get("role") or ""
        if role in _NOTE_ROLES or _NOTE_CLASS.search(aside.get("class") or ""):
            aside.tag = "div"


def _links_in_prose_as_text(root: HtmlElement) -> None:
    """The links inside running text, turned into their text.

    trafilatura drops a short block that is mostly links, as menus are. On reference pages
    that also dropped definitions such as "Return the square root of *x*. This has the same
    branch cut as log()." (its cross-reference is a link): 4-6% of the definitions on the
    benchmark pages (`python -m bench.compare_extractors`). Here the links of a text block
    (paragraph, list item, definition, table cell, heading) whose link text is at most
    half of its text are unwrapped; blocks that are (nearly) all link, such as menus,
    tables of contents and "next page" links, keep them, for trafilatura to drop.
    """
    blocks = {block for link in root.iter("a") if (block := _text_block(link)) is not None}
    for block in blocks:
        links = list(block.iter("a"))
        linked = sum(len(link.text_content().strip()) for link in links)
        if linked <= len(block.text_content().strip()) / 2:
            for link in links:
                link.drop_tag()


def _text_block(element: HtmlElement) -> HtmlElement | None:
    """The paragraph-like block `element` is inline in, or None inside a container."""
    parent = element.getparent()
    while parent is not None and parent.tag not in _TEXT_BLOCKS:
        if parent.tag in _CONTAINERS:
            return None
        parent = parent.getparent()
    return parent


def _html_title(html: str) -> str:
    from trafilatura.metadata import extract_metadata

    metadata = extract_metadata(html)
    return (metadata.title or "").strip() if metadata is not None else ""
