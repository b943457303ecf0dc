"""The main content of an HTML page, as Markdown with its headings.

Extraction is trafilatura's: it drops navigation, tables of contents, breadcrumbs,
"previous / next" links and footers, and joins inline tags into running text. On the
benchmark corpus (61 pages of Python's library reference, see bench/README.md) it keeps 99%
of the pages' main text and every API definition, with under 1% from elsewhere;
readability-lxml kept 61%.

Before it runs, links inside running text become plain text (`_links_in_prose_as_text`):
trafilatura drops short blocks that are mostly links, as menus are, and that dropped
definitions whose one sentence cross-references another. Its Markdown keeps headings as
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

EXTRACTOR = "trafilatura-3"
"""Names the extraction for the chunks' recorded ingest version (see `ingest.versions`)."""

# CommonMark's backslash escapes: a backslash before ASCII punctuation.
_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_DOCUMENT = re.compile(r"<(html|body)[\s>]", re.IGNORECASE)
_PERMALINK = re.compile(r"[ \t]*¶[ \t]*$", re.MULTILINE)
_TEXT_BLOCKS = frozenset(
    ("p", "dd", "dt", "li", "td", "th", "blockquote", "figcaption", "caption")
    + tuple(f"h{level}" for level in range(1, 7))
)
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
        _links_in_prose_as_text(document),
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


def _links_in_prose_as_text(document: str) -> HtmlElement:
    """The parsed page, with the links inside running text turned into their text.

    trafilatura drops a short block that is mostly links, as menus are. On reference pages
    that also dropped definitions such as "Return the square root of *x*. This has the same
    branch cut as log()." (its cross-reference is a link): 4-6% of the definitions on the
    benchmark pages (`python -m bench.compare_extractors`). Here the links of a text block
    (paragraph, list item, definition, table cell, heading) whose link text is at most
    half of its text are unwrapped; blocks that are (nearly) all link, such as menus,
    tables of contents and "next page" links, keep them, for trafilatura to drop.
    """
    from lxml.html import document_fromstring

    root = document_fromstring(document)
    blocks = {block for link in root.iter("a") if (block := _text_block(link)) is not None}
    for block in blocks:
        links = list(block.iter("a"))
        linked = sum(len(link.text_content().strip()) for link in links)
        if linked <= len(block.text_content().strip()) / 2:
            for link in links:
                link.drop_tag()
    return root


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
