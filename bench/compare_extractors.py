"""How well HTML extractors keep a page's main content and nothing else.

    bash bench/fetch_corpus.sh            # 61 pages of Python's reference into /tmp
    .venv/bin/pip install readability-lxml markdownify   # the comparison only
    python -m bench.compare_extractors [FOLDER]

For Sphinx pages the main content is known: the `div[role=main]` element. Each page's
text is cut into 6-word shingles; "kept" is the share of the main content's shingles an
extractor's output has, "foreign" the share of the output's shingles that are not from the
main content (menus, tables of contents, footers), "chrome" how many pages still show
"Previous topic", "Report a Bug" and the like, "definitions" the share of the page's API
definitions (a function's, class's, constant's entry) whose description's first words the
output has. Compared: this app's extractor
(trafilatura, `ingest.html_extraction`), readability-lxml's article (as Markdown through
markdownify), and the app's loader before it (the text of the whole page). An extractor
whose package is not installed is left out, with a note.
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable
from pathlib import Path

from lxml import html as lxml_html

from bench.common import command_line, table
from ingest.html_extraction import extract_main_content

CHROME = ("Previous topic", "Next topic", "Report a Bug", "Show Source", "Quick search")


def _shingles(text: str, n: int = 6) -> set[str]:
    words = re.findall(r"[a-z0-9]+", text.lower())
    return {" ".join(words[i : i + n]) for i in range(len(words) - n)}


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _definitions(main: lxml_html.HtmlElement) -> list[str]:
    """The first 8 words of each API definition's description in a Sphinx page's main
    content (at least 4 words)."""
    starts = []
    for term in main.xpath(".//dl[contains(@class, 'py')]/dt[@id]"):
        description = term.getnext()
        paragraph = description.find(".//p") if description is not None else None
        if paragraph is not None and len(words := _words(paragraph.text_content())[:8]) >= 4:
            starts.append(" ".join(words))
    return starts


def _whole_page(html: str) -> str:
    root = lxml_html.fromstring(html)
    for element in root.xpath("//script | //style | //noscript | //template"):
        element.drop_tree()
    return str(root.text_content())


def _readability(html: str) -> str:
    from markdownify import markdownify  # type: ignore[import-not-found,unused-ignore]
    from readability import Document  # type: ignore[import-not-found,unused-ignore]

    return str(markdownify(Document(html).summary(html_partial=True), heading_style="ATX"))


EXTRACTORS: dict[str, Callable[[str], str]] = {
    "trafilatura (this app)": lambda html: extract_main_content(html).markdown,
    "readability-lxml": _readability,
    "whole page (the loader before)": _whole_page,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=Path("/tmp/rag-bench-corpus"))
    pages = sorted(parser.parse_args().folder.glob("*.html"))
    rows = []
    for name, extract in EXTRACTORS.items():
        kept = foreign = 0.0
        chrome = definitions = definitions_kept = 0
        started = time.perf_counter()
        try:
            for path in pages:
                html = path.read_text(encoding="utf-8")
                main_elements = lxml_html.fromstring(html).xpath("//div[@role='main']")
                assert main_elements, f"{path.name} is not a Sphinx page"
                truth = _shingles(" ".join(main_elements[0].itertext()))
                output = extract(html)
                got = _shingles(output)
                kept += len(truth & got) / len(truth)
                foreign += len(got - truth) / max(1, len(got))
                chrome += any(marker in output for marker in CHROME)
                output_words = " ".join(_words(output))
                starts = _definitions(main_elements[0])
                definitions += len(starts)
                definitions_kept += sum(start in output_words for start in starts)
        except ImportError as exc:
            print(f"left out {name}: {exc}")
            continue
        seconds = time.perf_counter() - started
        rows.append(
            [
                name,
                f"{kept / len(pages):.1%}",
                f"{foreign / len(pages):.1%}",
                f"{chrome}/{len(pages)}",
                f"{definitions_kept / max(1, definitions):.1%} of {definitions}",
                f"{seconds / len(pages) * 1000:.0f}",
            ]
        )
    print(f"`{command_line()}` on {len(pages)} pages")
    print()
    headers = ["extractor", "kept", "foreign", "pages with chrome", "definitions", "ms/page"]
    print(table(headers, rows))


if __name__ == "__main__":
    main()
