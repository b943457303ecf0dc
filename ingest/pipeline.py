"""The one ingest pipeline: file -> pages -> chunks -> embeddings -> Milvus.

Used by the CLI and the chat's upload handler alike. Per file it is idempotent and
all-or-nothing:

- an unchanged file (same source, same content hash, all chunks present) adds nothing;
- a changed file's new version is registered as pending (hidden from searches, listings
  and counts), its chunks are written, and one commit shows it and hides the old version,
  whose chunks are deleted after (see `core.store.ledger`);
- if writing fails part way, the chunks written so far are deleted again; if the process
  is killed, they stay hidden and the next start sweeps them away. Either way the store
  shows the whole new version or the old one, never half of one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from core.errors import StoreWriteFailed, UnreadableFile, UserFacingError
from core.keyed_locks import KeyedLocks
from core.knowledge import LIBRARY_OWNER, ChunkRecord, DocumentKey, KnowledgeBase
from core.settings import Settings
from ingest.chunking import Origin, content_hash, ingest_version, split_pages
from ingest.fair import FairSlots
from ingest.limits import MIB, ParseLimits, check_chunk_count, check_chunk_estimate
from ingest.sandbox import parse_bounded

logger = logging.getLogger(__name__)

Stage = Literal["reading", "chunked", "embedding", "stored", "done", "failed"]
Status = Literal["added", "replaced", "unchanged", "failed"]


@dataclass(frozen=True)
class ProgressEvent:
    source: str
    stage: Stage
    chunks_done: int = 0
    chunks_total: int = 0


ProgressCallback = Callable[[ProgressEvent], Awaitable[None]]


@dataclass(frozen=True)
class FileOutcome:
    source: str
    status: Status
    chunks: int = 0
    reason: str | None = None
    public_reason: str | None = None
    """What a chat user is told when it differs from `reason`, which is for the operator
    (it may name a setting to change): see `core.errors.UserFacingError.public`."""

    @property
    def ok(self) -> bool:
        return self.status != "failed"


_SETTINGS = Settings.model_fields


@dataclass(frozen=True)
class IngestOptions:
    """How files are split and written; the defaults are `Settings`' defaults."""

    chunk_size: int = _SETTINGS["chunk_size"].default
    chunk_overlap: int = _SETTINGS["chunk_overlap"].default
    batch_size: int = _SETTINGS["ingest_batch_size"].default
    concurrency: int = _SETTINGS["ingest_concurrency"].default
    max_file_bytes: int = int(_SETTINGS["max_file_mb"].default * MIB)
    limits: ParseLimits = field(default_factory=ParseLimits)

    @classmethod
    def from_settings(cls, settings: Settings) -> IngestOptions:
        return cls(
            chunk_size=settings.chunk_size,
            chunk_overlap=settings.chunk_overlap,
            batch_size=settings.ingest_batch_size,
            concurrency=settings.ingest_concurrency,
            max_file_bytes=int(settings.max_file_mb * MIB),
            limits=ParseLimits.from_settings(settings),
        )


@dataclass
class _Prepared:
    file_hash: str
    chunks: list[ChunkRecord]


@dataclass
class Ingestor:
    """Writes files into a knowledge base with bounded concurrency, fairly.

    `concurrency` bounds the files parsed at once, the batches being embedded and written
    at once, and the files one `ingest_many` call has in flight; `batch_size` is the
    number of chunks per embedding + insert call. Parse and batch slots are handed out
    round-robin across owners and their files (`FairSlots`), so one user's large upload
    never makes another's small one wait for all of it.
    """

    kb: KnowledgeBase
    options: IngestOptions = field(default_factory=IngestOptions)
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self._parse_slots = FairSlots(self.options.concurrency)
        self._batch_slots = FairSlots(self.options.concurrency)
        # One lock per document being ingested: two uploads of one file never interleave.
        self._document_locks: KeyedLocks[DocumentKey] = KeyedLocks()

    async def ingest_many(
        self,
        files: Sequence[tuple[Path, str]],
        on_progress: ProgressCallback | None = None,
        *,
        owner: str = LIBRARY_OWNER,
        chat_id: str | None = None,
        on_outcome: Callable[[FileOutcome], Awaitable[None]] | None = None,
    ) -> list[FileOutcome]:
        """Ingest `(path, source)` pairs concurrently as `owner`'s documents (the shared
        library by default); one bad file never stops the others. `on_outcome` hears
        each file's outcome as soon as that file is done."""

        in_flight = asyncio.Semaphore(self.options.concurrency)  # bounds prepared chunks

        async def one(path: Path, source: str) -> FileOutcome:
            async with in_flight:
                outcome = await self.ingest_file(
                    path, source, owner=owner, chat_id=chat_id, on_progress=on_progress
                )
            if on_outcome is not None:
                await on_outcome(outcome)
            return outcome

        outcomes = await asyncio.gather(*(one(path, source) for path, source in files))
        if any(o.status in ("added", "replaced") for o in outcomes):
            await self.kb.flush()
        return list(outcomes)

    async def ingest_file(
        self,
        path: Path,
        source: str,
        *,
        owner: str = LIBRARY_OWNER,
        chat_id: str | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> FileOutcome:
        """Ingest the file at `path` as `owner`'s document `source`; never raises for a
        bad file.

        `source` names the document (its suffix says the format); `chat_id` records the
        chat an upload came from.
        """
        document = DocumentKey(owner=owner, source=source)
        async with self._document_locks(document):
            try:
                origin = Origin(document, added_at=int(self.clock()), chat_id=chat_id)
                return await self._ingest(path, origin, on_progress)
            except UserFacingError as exc:
                reason, public = str(exc), exc.public
            except Exception as exc:
                logger.exception("ingest of %s failed", source)
                reason, public = f"{type(exc).__name__}: {_short(exc)}", None
        if on_progress is not None:
            await on_progress(ProgressEvent(source, "failed"))
        return FileOutcome(source, "failed", reason=reason, public_reason=public)

    async def _ingest(
        self, path: Path, origin: Origin, on_progress: ProgressCallback | None
    ) -> FileOutcome:
        document = origin.document
        source = document.source

        async def report(stage: Stage, done: int = 0, total: int = 0) -> None:
            if on_progress is not None:
                await on_progress(ProgressEvent(source, stage, done, total))

        await report("reading")
        async with self._parse_slots.slot(document.owner, source):
            prepared = await asyncio.to_thread(self._prepare, path, origin)
        total = len(prepared.chunks)
        await report("chunked", 0, total)

        versions = await self.kb.stored_versions(document)
        same = next((v for v in versions if v.file_hash == prepared.file_hash), None)
        if same is not None and same.committed and same.complete and same.stored == total:
            if versions != [same]:  # leftovers of an interrupted run beside it: hide them
                await self.kb.commit_version(document, prepared.file_hash, total)
            await report("done", total, total)
            return FileOutcome(source, "unchanged", chunks=total)

        # Hidden from every search until committed; clears an interrupted run's leftovers.
        await self.kb.begin_version(document, prepared.file_hash)
        await report("embedding", 0, total)
        try:
            await self._write(document, prepared.chunks, report)
        except Exception as exc:
            await asyncio.shield(self._remove_partial(document, prepared.file_hash))
            logger.warning("writing %s failed: %s", source, _short(exc))
            public = exc.public if isinstance(exc, UserFacingError) else None
            raise StoreWriteFailed(
                _partial_write_failed(_short(exc)),
                public=None if public is None else _partial_write_failed(public),
            ) from exc
        except BaseException:  # cancelled: still leave nothing half-written
            await asyncio.shield(self._remove_partial(document, prepared.file_hash))
            raise
        try:  # the one step that shows the new version and hides the old (deleted after)
            await self.kb.commit_version(document, prepared.file_hash, total)
        except StoreWriteFailed:  # refused before the switch: this version never showed
            await asyncio.shield(self._remove_partial(document, prepared.file_hash))
            raise
        replaced = any(v.file_hash != prepared.file_hash and v.committed for v in versions)
        await report("done", total, total)
        return FileOutcome(source, "replaced" if replaced else "added", chunks=total)

    def _prepare(self, path: Path, origin: Origin) -> _Prepared:
        size = path.stat().st_size
        if size > self.options.max_file_bytes:
            raise UnreadableFile(
                f"the file is {size / MIB:.1f} MB, over the limit of "
                f"{self.options.max_file_bytes / MIB:.0f} MB"
            )
        data = path.read_bytes()
        # The format comes from the source name (an upload's stored path carries a suffix
        # guessed from the browser's MIME type, which is not trusted), then from the bytes.
        limits = self.options.limits
        loaded = parse_bounded(data, origin.document.source, limits)
        chars = sum(len(page.page_content) for page in loaded.pages)
        check_chunk_estimate(
            chars, self.options.chunk_size, self.options.chunk_overlap, limits.max_chunks
        )
        file_hash = content_hash(
            data, ingest_version(self.options.chunk_size, self.options.chunk_overlap)
        )
        chunks = split_pages(
            loaded.pages,
            kind=loaded.kind,
            origin=origin,
            file_hash=file_hash,
            chunk_size=self.options.chunk_size,
            chunk_overlap=self.options.chunk_overlap,
        )
        check_chunk_count(len(chunks), limits.max_chunks)
        return _Prepared(file_hash=file_hash, chunks=chunks)

    async def _write(
        self,
        document: DocumentKey,
        chunks: list[ChunkRecord],
        report: Callable[[Stage, int, int], Awaitable[None]],
    ) -> None:
        size = self.options.batch_size
        batches = [chunks[i : i + size] for i in range(0, len(chunks), size)]
        done = 0

        async def write(batch: list[ChunkRecord]) -> None:
            nonlocal done
            async with self._batch_slots.slot(document.owner, document.source):
                await self.kb.add_chunks(batch)
            done += len(batch)
            await report("stored", done, len(chunks))

        tasks = [asyncio.ensure_future(write(batch)) for batch in batches]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def _remove_partial(self, document: DocumentKey, file_hash: str) -> None:
        try:
            await self.kb.delete_version(document, file_hash)
        except Exception as exc:  # they stay hidden; the next start sweeps them away
            logger.warning(
                "could not remove the partial chunks of %s: %s", document.source, _short(exc)
            )


def _partial_write_failed(why: str) -> str:
    return (
        f"storing its chunks failed part way ({why}); the partial chunks were removed and "
        "any earlier version is unchanged"
    )


def _short(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
