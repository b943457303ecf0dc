"""The citation side panel opens when a citation is clicked, never by itself.

Chainlit 2.11 and 2.12 open the side panel whenever a message with `display="side"`
elements arrives (Chainlit issue #2979; fixed upstream by pull request #2982, not yet
released): after every answer it pops open with all side elements of the chat, titled
with the newest one, so it shows a passage of an earlier answer, and on a phone it covers
the chat. This app's citations are side elements, so the app serves Chainlit's bundle with
that one call removed (the same change as #2982): the effect still closes the panel
when no side elements remain, and a click on a citation opens it as before.

The change is made once, on the packaged bundle, by a pattern that must match exactly
once; if a Chainlit upgrade changes the code, the original bundle is served and a warning
says so (the upgrade may well have fixed it).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

logger = logging.getLogger(__name__)

# In MessagesContainer: `setSideView({title: side[side.length - 1].name, elements: side})`,
# minified as e.g. `u({title:D[D.length-1].name,elements:D})`.
AUTO_OPEN = re.compile(
    rb"\b[A-Za-z_$][\w$]*\(\{title:([A-Za-z_$][\w$]*)\[\1\.length-1\]\.name,elements:\1\}\)"
)
_BUNDLE = re.compile(r'src="/assets/(index-[\w-]+\.js)"')


def open_side_panel_on_click_only() -> None:
    """Serve Chainlit's main bundle without the auto-open (a route ahead of its own)."""
    from chainlit.server import app, build_dir

    bundle = main_bundle(Path(build_dir))
    if bundle is None:
        logger.warning("side panel fix not applied: Chainlit's main bundle was not found")
        return
    patched = without_auto_open(bundle.read_bytes())
    if patched is None:
        logger.warning(
            "side panel fix not applied: Chainlit's bundle changed (check whether the "
            "side panel still opens by itself, Chainlit issue #2979)"
        )
        return
    path = f"/assets/{bundle.name}"
    if any(getattr(route, "path", None) == path for route in app.router.routes):
        return

    async def serve_bundle(request: Request) -> Response:
        return Response(patched, media_type="text/javascript")

    app.router.routes.insert(0, Route(path, serve_bundle, methods=["GET", "HEAD"]))


def main_bundle(build_dir: Path) -> Path | None:
    """The script `index.html` loads."""
    match = _BUNDLE.search((build_dir / "index.html").read_text(encoding="utf-8"))
    if match is None:
        return None
    path = build_dir / "assets" / match.group(1)
    return path if path.is_file() else None


def without_auto_open(bundle: bytes) -> bytes | None:
    """`bundle` with the auto-open call replaced by `void 0`; None unless it occurs once.

    >>> without_auto_open(b"x=1,u({title:D[D.length-1].name,elements:D})}")
    b'x=1,void 0}'
    """
    patched, count = AUTO_OPEN.subn(b"void 0", bundle)
    return patched if count == 1 else None
