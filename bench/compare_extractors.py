"""How well HTML extractors keep a page's main content and nothing else.

    bash bench/fetch_corpus.sh            # 61 pages of Python's reference into /tmp
    .venv/bin/pip install readability-lxml markdownify   # the comparison only
    python -m bench.compare_extractors [FOLDER]

For Sphinx pages the main content is known: the `div[role=main]` element. Each page's
text is cut into 6-word shingles; "kept" is the share of the main content's shingles an
extractor's output has, "foreign" the share of the output's shingles that are not from the
main content (menus, tables of contents, footers), "chrome" how many pages still show
"Previous topic", "Report a Bug" and the like. Compared: this app's extractor
(trafilatura, `ingest.html_extraction`), readability-lxml's article (as Markdown through
markdownify), and the app's loader before it (the text of the whole page).
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
        chrome = 0
        started = time.perf_counter()
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
        seconds = time.perf_counter() - started
        rows.append(
            [
                name,
                f"{kept / len(pages):.1%}",
                f"{foreign / len(pages):.1%}",
                f"{chrome}/{len(pages)}",
                f"{seconds / len(pages) * 1000:.0f}",
            ]
        )
    print(f"`{command_line()}` on {len(pages)} pages")
    print()
    print(table(["extractor", "kept", "foreign", "pages with chrome", "ms/page"], rows))


if __name__ == "__main__":
    main()
