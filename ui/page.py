r"""The page Chainlit serves, adjusted: nothing from other hosts, and no composer that is
swapped away while someone types.

Chainlit's `index.html` links Google Fonts (with two `preconnect`s) and a KaTeX
stylesheet on a CDN: every visitor's browser would contact those hosts (the CSP blocks the
requests, but not the preconnects). They are removed; the page uses the system's fonts
(Inter, when installed) and no KaTeX (`latex = false`).

Until the first message arrives, Chainlit shows a composer on its welcome screen, then
replaces it by another (losing what was typed), and the chat session may not exist yet.
This app always opens a chat with a welcome message, so the welcome screen is only ever
the moment of connecting: it shows "Connecting…" instead. What is typed before the
message box appears is kept and put into it (`static/early_typing.js`).

Another small script reports files the browser refuses to attach (`ui.upload_refusals`).

>>> print(without_foreign_links('<link rel="preconnect" href="https://x.example" />'
...       '<link rel="stylesheet" href="/assets/a.css">'))
<link rel="stylesheet" href="/assets/a.css">
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from pathlib import Path

_FOREIGN_LINK = re.compile(
    r"""<link\b[^>]*\bhref\s*=\s*["']?(?:[a-z][a-z0-9+.-]*:)?//[^>]*>\s*""", re.IGNORECASE
)
STYLE = """<style id="rag-chat-page">
  #welcome-screen > * { display: none !important; }
  #welcome-screen::before { content: "Connecting\\2026"; opacity: 0.6; }
</style>"""


def serve_local_page() -> None:
    """Wrap Chainlit's page template (its index route looks it up on each request)."""
    import chainlit.server as server

    template: Callable[[str], str] = server.get_html_template
    if getattr(template, "local_page", False):
        return

    @functools.wraps(template)
    def local_page(root_path: str) -> str:
        return adjust_page(template(root_path))

    local_page.local_page = True  # type: ignore[attr-defined]
    server.get_html_template = local_page


def adjust_page(html: str) -> str:
    """The page without links to other hosts, with the app's style and scripts in its
    head (they keep early typing and report files the browser refused)."""
    scripts = "".join(f"<script>\n{script}</script>\n" for script in _scripts())
    return without_foreign_links(html).replace("</head>", f"{STYLE}\n{scripts}</head>", 1)


SCRIPTS = ("early_typing.js", "upload_refusals.js")


@functools.cache
def _scripts() -> tuple[str, ...]:
    static = Path(__file__).parent / "static"
    return tuple((static / name).read_text(encoding="utf-8") for name in SCRIPTS)


def without_foreign_links(html: str) -> str:
    """`html` without `<link>` elements (stylesheets, preconnects) to another host."""
    return _FOREIGN_LINK.sub("", html)
