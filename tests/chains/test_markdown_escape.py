import doctest
import re

import pytest
from markdown_it import MarkdownIt

import chains.markdown_escape
import chains.safety
from chains.markdown_escape import code_block, code_span, markdown_text
from tests.markdown_view import active_constructs, visible_text

UNTRUSTED = [
    "![s](https:HOST?x).txt",
    "![s](//HOST/x) [l](//HOST/y) <img src=//HOST/z>.md",
    "[ph[i]sh](//HOST/k)",
    "# heading.md",
    "1. list.md",
    "- item.md",
    "+ item.md",
    "> quote.md",
    "=== setext",
    "__NOGLOBS__.txt",
    "*a* _b_ ~~c~~ `d` ``e``",
    "a | b | c.md",
    "&amp; &lt;b&gt; &#33;",
    "www.HOST.example.pdf",
    "me@HOST.example.txt",
    "report [1].pdf",
    "trailing!",
    "trailing:",
    "back\\slash\\",
]


@pytest.mark.parametrize("name", UNTRUSTED)
def test_markdown_text_renders_literally_and_inertly(name: str) -> None:
    shown = markdown_text(name)
    assert active_constructs(shown) == [], shown
    assert visible_text(shown) == name
    assert visible_text(f"- [1] {shown} · score 0.5") == f"[1] {name} · score 0.5"


def test_markdown_text_is_one_line_and_not_a_directive() -> None:
    assert markdown_text("two\nlines\n\n# here") == "two lines \\# here"
    assert markdown_text("0:text/x-diff") == "0\\:text/x-diff"  # remark-directive's `:name`
    assert markdown_text("[2]") == "\\[2\\]"  # never taken for a citation


@pytest.mark.parametrize(
    "text", ["plain", "a `tick`", "`starts", "ends`", "``double`` and `single`", " spaced "]
)
def test_code_span_keeps_every_character(text: str) -> None:
    tokens = MarkdownIt("commonmark").parseInline(code_span(text))[0].children
    assert tokens is not None
    assert [(t.type, t.content) for t in tokens] == [("code_inline", text)]


def test_code_span_in_a_table_cell_keeps_the_cell() -> None:
    name = "a|b\\c `x`"
    table = f"| name | n |\n|---|---|\n| {code_span(name, table_cell=True)} | 2 |\n"
    cells = [t for t in MarkdownIt("commonmark").enable("table").parse(table) if t.type == "inline"]
    assert len(cells) == 4
    code = cells[2].children[0]  # type: ignore[index]
    assert code.type == "code_inline"
    # remark-gfm unescapes `\|` and `\\` inside code in a table cell.
    assert re.sub(r"\\([\\|])", r"\1", code.content) == name


def test_code_block_keeps_every_character() -> None:
    text = "__NOGLOBS__\n===\n0:text/x-diff\n```\n````\n![x](//HOST/x)\n  indented\n"
    tokens = MarkdownIt("commonmark").parse(code_block(text))
    assert [(t.type, t.content) for t in tokens] == [("fence", text)]
    assert code_block("no newline") == "```\nno newline\n```"


def test_docstring_examples_hold() -> None:
    for module in (chains.markdown_escape, chains.safety):
        assert doctest.testmod(module).failed == 0, module.__name__
