"""Splitting Markdown into sections on its headings, each with its heading path.

HTML pages arrive here as Markdown too (`ingest.html_extraction`), so both formats are cut
the same way: LangChain's `MarkdownHeaderTextSplitter` on `#` to `####` (it knows code
fences), then the chunker splits each section on its own, so no chunk straddles two.

>>> sections = split_sections(
...     "# Tasks\\n\\nIntro.\\n\\n## Timeouts\\n\\nUse timeout().\\n\\n### Example\\n\\nSee.",
...     title="Tasks",
... )
>>> [(s.path, s.text) for s in sections]
[((), 'Intro.'), (('Timeouts',), 'Use timeout().'), (('Timeouts', 'Example'), 'See.')]
>>> sections[2].heading("Tasks")
'Tasks › Timeouts › Example'
"""

from __future__ import annotations

from dataclasses import dataclass

from langchain_core.documents import Document
from langchain_text_splitters import MarkdownHeaderTextSplitter

from core.knowledge import heading_path

_LEVELS = ("h1", "h2", "h3", "h4")
_SPLITTER_HEADERS = [("#" * n, level) for n, level in enumerate(_LEVELS, start=1)]


@dataclass(frozen=True)
class Section:
    """A section's text (headings stripped) and the headings above it, below the page
    title: `("Timeouts",)` for a `##` section of a page whose `#` is its title."""

    path: tuple[str, ...]
    text: str

    def heading(self, title: str) -> str:
        """The full heading path, page title first ("Tasks › Timeouts")."""
        return heading_path(title, *self.path)


def split_sections(markdown: str, *, title: str) -> list[Section]:
    """The sections of `markdown` in order; a top-level heading equal to `title` is the
    page's own and stays out of the paths."""
    sections = []
    for doc in _split(markdown):
        headings = [str(doc.metadata[level]) for level in _LEVELS if level in doc.metadata]
        if headings and headings[0] == title:
            headings = headings[1:]
        if doc.page_content.strip():
            sections.append(Section(tuple(headings), doc.page_content.strip()))
    return sections


def first_heading(markdown: str) -> str | None:
    r"""The text of the first top-level (`#`) heading outside code, if any.

    >>> first_heading("```\n# not a heading\n```\n# Title\ntext"), first_heading("## Sub\ntext")
    ('Title', None)
    """
    return next((str(d.metadata["h1"]) for d in _split(markdown) if "h1" in d.metadata), None)


def _split(markdown: str) -> list[Document]:
    return MarkdownHeaderTextSplitter(_SPLITTER_HEADERS, strip_headers=True).split_text(markdown)
