"""Knowledge-base management from the chat: `/docs` lists documents, `/remove NAME` removes one."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from chainlit.types import CommandDict

from chains.markdown_escape import code_span, markdown_text
from core.knowledge import LIBRARY_OWNER, AccessScope, DocumentInfo, KnowledgeBase
from ui.lookalike import escaped, mixed_scripts

COMMANDS: list[CommandDict] = [
    {
        "id": "docs",
        "description": "List the documents in the knowledge base",
        "icon": "library",
        "button": False,
        "persistent": False,
        "selected": False,
    },
    {
        "id": "remove",
        "description": "Remove a document by name: /remove NAME",
        "icon": "trash-2",
        "button": False,
        "persistent": False,
        "selected": False,
    },
]
_TEXT_COMMAND = re.compile(r"^/(docs|remove)(?:\s+(.*))?$", re.DOTALL)


def parse_command(command: str | None, content: str) -> tuple[str, str] | None:
    """`(name, argument)` for a command picked in the UI or typed as `/docs`, `/remove X`."""
    if command in ("docs", "remove"):
        return command, content.strip()
    match = _TEXT_COMMAND.match(content.strip())
    if match is None:
        return None
    return match.group(1), (match.group(2) or "").strip()


def _when(timestamp: int | None) -> str:
    if timestamp is None:
        return "unknown"
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _origin(doc: DocumentInfo, chat_id: str) -> str:
    if doc.owner == LIBRARY_OWNER:
        return "library"
    if doc.chat_id == chat_id:
        return "this chat"
    return f"upload by {doc.owner}"


def documents_table(documents: list[DocumentInfo], chat_id: str) -> str:
    if not documents:
        return "The knowledge base is empty. Attach files to a message to add them."
    rows = [
        f"The knowledge base holds **{len(documents)} documents** "
        f"({sum(d.chunks for d in documents)} chunks):",
        "",
        "| Document | Chunks | Added | From |",
        "|---|---:|---|---|",
    ]
    for doc in documents:
        origin = markdown_text(_origin(doc, chat_id))
        name = code_span(doc.source, table_cell=True)
        if scripts := mixed_scripts(doc.source):
            warning = f"mixed scripts ({', '.join(s.title() for s in scripts)}):"
            name += f" ⚠ {warning} {code_span(escaped(doc.source), table_cell=True)}"
        rows.append(f"| {name} | {doc.chunks} | {_when(doc.added_at)} | {origin} |")
    rows += ["", "Remove one with `/remove NAME`."]
    return "\n".join(rows)


async def run_command(
    kb: KnowledgeBase,
    name: str,
    argument: str,
    *,
    scope: AccessScope,
    removable: AccessScope,
    chat_id: str,
) -> str:
    """Run a management command: list within `scope` (what the signed-in user may see),
    remove within `removable` (their own documents; the library too for an admin).
    Returns the reply to show."""
    if name == "docs":
        return documents_table(await kb.list_documents(scope), chat_id)
    if not argument:
        return "Say which document to remove: `/remove NAME` (see `/docs` for the names)."
    removed = await kb.remove_document(argument, removable)
    if removed == 0:
        if any(d.source == argument for d in await kb.list_documents(scope)):
            return f"{code_span(argument)} is in the shared library: only an admin can remove it."
        return f"No document named {code_span(argument)} is in the knowledge base (see `/docs`)."
    return f"Removed {code_span(argument)} ({removed} chunks) from the knowledge base."
