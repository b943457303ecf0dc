r"""Untrusted text into Markdown that renders it literally.

File names, passage labels, user names and excerpts are untrusted: printed raw into a
message they could become images (the browser fetches them), links, HTML or headings.
Three ways to print them, all of which render every character as written:

>>> print(markdown_text("![s](https:HOST?x) # 1. *big*"))
\!\[s\]\(https\:HOST?x) \# 1. \*big\*
>>> print(markdown_text("see www.example.com [1]"))
see `www.example.com` \[1\]
>>> print(code_span("a `tick`"))
`` a `tick` ``
>>> print(code_block("```\nx"))
````
```
x
````

The escaping is written against what Chainlit's renderer does (react-markdown with
remark-gfm and remark-directive, raw HTML off), including after the fact: remark-gfm links
any text that looks like a URL or an e-mail address (escapes don't stop it), so such words
go into code spans; a citation `[n]` is left as is (the UI turns it into a link to the
cited passage), so the characters that could extend it into a link are escaped.
"""

from __future__ import annotations

import re

# Always escaped: they open or close inline constructs wherever they stand.
_ALWAYS = frozenset("\\`*_<&|~[]#")
# Escaped at the start of a line: block markers (heading, quote, list, setext underline).
_LINE_START = frozenset(">-+=")
_ORDERED_MARKER = re.compile(r"\d{1,9}[.)]")
_CITATION = re.compile(r"\[\d{1,3}\]")
# A word remark-gfm might turn into a link: a scheme, `www.`, an e-mail, `//host`.
_LINKISH = re.compile(r"://|www\.|@[\w-]+\.|^//[^/\s]", re.IGNORECASE)
_WORD = re.compile(r"\S+")
_TRAILING = re.compile(r"(?:\[\d{1,3}\]|[.,;:!?'\")\]])+$")
_BACKTICKS = re.compile(r"`+")
_INFO = re.compile(r"[\w+#.-]*")


def markdown_text(text: str) -> str:
    """Untrusted text as one line of Markdown that shows exactly that text (whitespace
    runs become one space). Safe anywhere inline, at the start of a line and in a table cell."""
    return escape_text(" ".join(text.split()), keep_citations=False)


def escape_text(text: str, *, keep_citations: bool, line_start: bool = True) -> str:
    """Escape `text` so it renders literally; with `keep_citations`, `[n]` stays a citation.

    `line_start` says the text begins a line (so block markers are escaped there). The
    text is assumed to sit between markup that is not itself text: its last character is
    escaped whenever the character after it could matter.
    """
    out: list[str] = []
    position = 0
    for word in _WORD.finditer(text):
        if not _LINKISH.search(word.group()):
            continue
        start, end = word.span()
        core = word.group()
        tail = _TRAILING.search(core)
        if tail is not None and tail.start() > 0:
            end -= len(tail.group())
            core = core[: tail.start()]
        out.append(_escape_plain(text[position:start], keep_citations, line_start, position))
        out.append(code_span(core))
        position = end
    out.append(_escape_plain(text[position:], keep_citations, line_start, position))
    return "".join(out)


def _escape_plain(text: str, keep_citations: bool, line_start: bool, offset: int) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        at_line_start = (i == 0 and line_start and offset == 0) or (i > 0 and text[i - 1] == "\n")
        if keep_citations and ch == "[" and (citation := _CITATION.match(text, i)):
            out.append(citation.group())
            i = citation.end()
            continue
        following = text[i + 1] if i + 1 < len(text) else ""
        previous = text[i - 1] if i > 0 else ""
        if at_line_start and (marker := _ORDERED_MARKER.match(text, i)):
            out.append(marker.group()[:-1] + "\\" + marker.group()[-1])
            i = marker.end()
            continue
        if (
            ch in _ALWAYS
            or (at_line_start and ch in _LINE_START)
            or (ch == "!" and following in ("", "["))
            or (ch == "(" and previous == "]")
            or (ch == ":" and (following in ("", ":") or following.isalpha() or previous == "]"))
        ):
            out.append("\\")
        out.append(ch)
        i += 1
    return "".join(out)


def code_span(text: str, *, table_cell: bool = False) -> str:
    """`text` as an inline code span, whatever backticks it holds (newlines become spaces).

    In a GFM table cell, `|` and `\\` are escaped too: remark-gfm unescapes them inside
    code there, and a bare `|` would end the cell.
    """
    text = text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
    if not text:
        return ""
    if table_cell:
        text = text.replace("\\", "\\\\").replace("|", "\\|")
    fence = "`" * (_longest_backtick_run(text) + 1)
    pad = " " if text[0] in "` " or text[-1] in "` " else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def code_block(text: str, info: str = "") -> str:
    """`text` as a fenced code block that keeps every character: the fence is longer
    than any run of backticks inside, so no line of the text can close it."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    fence = "`" * max(3, _longest_backtick_run(text) + 1)
    language = match.group() if (match := _INFO.match(info.strip())) else ""
    body = text if not text or text.endswith("\n") else text + "\n"
    return f"{fence}{language}\n{body}{fence}"


def _longest_backtick_run(text: str) -> int:
    return max((len(run) for run in _BACKTICKS.findall(text)), default=0)
