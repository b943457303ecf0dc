"""How a Markdown string renders, for assertions: what a reader sees, and what is active.

A CommonMark parser with GFM tables and strikethrough stands in for Chainlit's renderer
(react-markdown + remark-gfm); the browser tests check the real one.
"""

from __future__ import annotations

import html
import re

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

# What remark-gfm turns into a link even in plain text (its autolink-literal patterns).
_AUTOLINK_LITERAL = re.compile(r"https?://|www\.|[-.\w+]+@[-\w]+(?:\.[-\w]+)+", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")


def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def visible_text(markdown: str) -> str:
    """The text a reader sees (tags dropped, entities decoded, whitespace collapsed)."""
    rendered = _TAG.sub("", _parser().render(markdown))
    return " ".join(html.unescape(rendered).split())


def active_constructs(markdown: str) -> list[str]:
    """Everything in the rendered Markdown that could fetch, navigate or run: images,
    links, raw HTML, and plain text that remark-gfm would turn into a link."""
    found: list[str] = []

    def walk(node: SyntaxTreeNode) -> None:
        for child in node.children:
            if child.type in ("image", "link", "html_inline", "html_block"):
                found.append(f"{child.type}: {child.attrs or child.content}")
            elif child.type == "text" and _AUTOLINK_LITERAL.search(child.content):
                found.append(f"autolink literal: {child.content}")
            walk(child)

    walk(SyntaxTreeNode(_parser().parse(markdown)))
    return found
