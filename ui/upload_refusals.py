"""A file the browser refused to attach leaves its reason in the conversation.

Chainlit checks type, size and count in the browser and shows only a toast that
vanishes. The page's script (`ui/static/upload_refusals.js`, inlined by `ui.page`) posts
each such refusal to the window; Chainlit forwards it to `on_window_message`, and this
turns it into a message in the chat. The data comes from the browser: only its reason
and file names are used, both capped and shown as plain text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import chainlit as cl

from chains.markdown_escape import code_span, markdown_text
from ui.uploads import document_name

KIND = "rag-chat/upload-refused"
MAX_REASON_CHARS = 300
MAX_NAMES = 20


@dataclass(frozen=True)
class Refusal:
    reason: str
    names: tuple[str, ...]

    @classmethod
    def from_browser(cls, data: Any) -> Refusal | None:
        """The refusal a window message describes, or None if it is not one.

        >>> Refusal.from_browser({"kind": KIND, "reason": "File is larger than 1 MB",
        ...                       "names": ["big.txt"]})
        Refusal(reason='File is larger than 1 MB', names=('big.txt',))
        >>> Refusal.from_browser({"kind": "other"}) is None
        True
        """
        if not isinstance(data, dict) or data.get("kind") != KIND:
            return None
        reason = data.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            return None
        names = data.get("names")
        names = names if isinstance(names, list) else []
        return cls(
            reason=" ".join(reason.split())[:MAX_REASON_CHARS],
            names=tuple(document_name(n) for n in names[:MAX_NAMES] if isinstance(n, str)),
        )

    def text(self) -> str:
        files = ", ".join(code_span(name) for name in self.names)
        what = f"{files}: " if files else ""
        return f"**Not attached**: {what}{markdown_text(self.reason)}"


async def report_refused_upload(data: Any) -> None:
    """Post the refusal a window message describes (anything else is ignored)."""
    refusal = Refusal.from_browser(data)
    if refusal is not None:
        await cl.Message(content=refusal.text()).send()
