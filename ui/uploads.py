"""Files attached to a chat message go into the knowledge base through the ingest pipeline.

Each file gets a live line in one progress message (reading, chunks, embedding, stored)
that ends, as soon as that file is done, as: chunks added, unchanged, or the reason it
failed.
"""

from __future__ import annotations

import asyncio
import re
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import chainlit as cl

from chains.markdown_escape import code_span, markdown_text
from ingest.pipeline import FileOutcome, Ingestor, ProgressEvent
from ui.upload_limits import discard_uploads

UPDATE_SECONDS = 0.3
MAX_NAME_CHARS = 200


def document_name(filename: str) -> str:
    """The user's file name made safe to show and store: no folders, no control
    characters, bounded length. It names the document; it never becomes a path."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")
    base = re.sub(r"\s+", " ", base).strip().lstrip(".")
    if len(base) > MAX_NAME_CHARS:
        stem, dot, suffix = base.rpartition(".")
        keep = MAX_NAME_CHARS - len(suffix) - 1
        base = f"{stem[:keep]}.{suffix}" if dot and len(suffix) <= 10 else base[:MAX_NAME_CHARS]
    return base or "upload"


@dataclass
class _Line:
    name: str
    text: str = "waiting"


def _describe(event: ProgressEvent) -> str:
    if event.stage == "reading":
        return "reading…"
    if event.stage == "chunked":
        return f"{event.chunks_total} chunks"
    if event.stage == "embedding":
        return f"embedding {event.chunks_total} chunks…"
    if event.stage == "stored":
        return f"stored {event.chunks_done}/{event.chunks_total} chunks…"
    return "finishing…"


def outcome_line(outcome: FileOutcome) -> str:
    if outcome.status == "added":
        return f"**added**, {outcome.chunks} chunks"
    if outcome.status == "replaced":
        return f"**replaced** the earlier version, {outcome.chunks} chunks"
    if outcome.status == "unchanged":
        return "**already in the knowledge base** (unchanged), nothing added"
    return f"**not added**: {markdown_text(str(outcome.public_reason or outcome.reason))}"


class UploadReport:
    """One chat message with a line per file, updated as the files are ingested."""

    def __init__(self, names: list[str], rejected: list[tuple[str, str]]) -> None:
        self.lines = {name: _Line(name) for name in names}
        self.rejected = rejected
        self.message = cl.Message(content=self._render())
        self._last_update = 0.0
        self._lock = asyncio.Lock()

    def _render(self) -> str:
        count = len(self.lines) + len(self.rejected)
        rows = [f"**Adding {count} file{'s' if count != 1 else ''} to the knowledge base**", ""]
        rows += [f"- {code_span(line.name)}: {line.text}" for line in self.lines.values()]
        rows += [
            f"- {code_span(name)}: **not added**: {markdown_text(reason)}"
            for name, reason in self.rejected
        ]
        return "\n".join(rows)

    async def progress(self, event: ProgressEvent) -> None:
        if event.stage in ("done", "failed"):
            return  # the outcome line replaces it
        self.lines[event.source].text = _describe(event)
        if time.monotonic() - self._last_update >= UPDATE_SECONDS:
            await self._update()

    async def file_done(self, outcome: FileOutcome) -> None:
        """Show one file's result at once (the others may take much longer)."""
        self.lines[outcome.source].text = outcome_line(outcome)
        await self._update()

    async def _update(self) -> None:
        async with self._lock:
            self.message.content = self._render()
            await self.message.update()
            self._last_update = time.monotonic()


async def ingest_uploads(
    ingestor: Ingestor,
    elements: list[Any],
    *,
    max_files: int,
    owner: str,
    chat_id: str,
) -> list[FileOutcome]:
    """Ingest the files attached to a message as `owner`'s documents (the signed-in
    user); returns one outcome per accepted file."""
    files: list[tuple[Path, str]] = []
    rejected: list[tuple[str, str]] = []
    seen: set[str] = set()
    for element in elements:
        name = document_name(str(element.name or ""))
        if len(files) >= max_files:
            rejected.append((name, f"at most {max_files} files per message"))
        elif name in seen:
            rejected.append((name, "the same name was attached twice in this message"))
        else:
            seen.add(name)
            files.append((Path(element.path), name))
    report = UploadReport([name for _, name in files], rejected)
    await report.message.send()
    try:
        return await ingestor.ingest_many(
            files, report.progress, owner=owner, chat_id=chat_id, on_outcome=report.file_done
        )
    finally:  # ingested (or refused): the uploaded copies are not needed any more
        discard_uploads(cl.context.session, elements)
