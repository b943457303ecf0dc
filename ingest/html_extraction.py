"""The main content of an HTML page, as Markdown with its headings.

Extraction is trafilatura's: it drops navigation, tables of contents, breadcrumbs,
"previous / next" links and footers, and joins inline tags into running text. On the
benchmark corpus (61 pages of Python's library reference, see bench/README.md) it kept 98%
of the pages' main text with under 1% from elsewhere; readability-lxml kept 61%.

Its Markdown keeps headings as `#` lines, which the chunker splits on (`ingest.sections`).
Two things are undone afterwards: Markdown's backslash escapes (`create\\_task` is stored
as `create_task`, so keyword search and readers see the identifier), and the permalink
marks documentation generators put after headings and definitions ("¶").

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

from ingest.sections import first_heading

EXTRACTOR = "trafilatura-2"
"""Names the extraction for the chunks' recorded ingest version (see `ingest.versions`)."""

# CommonMark's backslash escapes: a backslash before ASCII punctuation.
_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_DOCUMENT = re.compile(r"<(html|body)[\s>]", re.IGNORECASE)
_PERMALINK = re.compile(r"[ \t]*¶[ \t]*$", re.MULTILINE)


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
        document,
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


def _html_title(html: str) -> str:
    from trafilatura.metadata import extract_metadata

    metadata = extract_metadata(html)
    return (metadata.title or "").strip() if metadata is not None else ""
