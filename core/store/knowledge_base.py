"""The knowledge base: the app's one door to Milvus.

`MilvusKnowledgeBase.open(settings, embeddings)` connects, probes the backend, creates
the collection (schema v2) when it is missing or checks it when it exists, and returns a
handle whose methods speak the app's terms (`core.knowledge`). Every read and delete is
narrowed by an `AccessScope`; filters are rendered here (templates where the backend
takes them, escaped literals elsewhere); every call carries the configured timeout; and
Milvus failures leave as `StoreUnavailable` with a message for the person asking, after
one retry when the server restarted or the connection dropped (`core.store.healing`).

Document versions are crash-safe (`core.store.ledger`): a version being written is hidden
from searches, listings and counts until `commit_version` shows it and hides the one it
replaces in one step; opening the knowledge base sweeps away what killed writers left.

It must be opened inside the event loop that will use it: the async Milvus client binds
to the loop of its first call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, TypeVar

from langchain_core.embeddings import Embeddings
from pymilvus import AsyncMilvusClient

from core.errors import StoreUnavailable, StoreWriteFailed
from core.knowledge import (
    INGEST_VERSION_FIELD,
    UNKNOWN_VERSION,
    AccessScope,
    Capabilities,
    ChunkRecord,
    DocumentInfo,
    DocumentKey,
    Hit,
    SearchRequest,
    StoredVersion,
    effective_mode,
)
from core.settings import Settings
from core.store.filters import MAX_QUERY_ROWS, MilvusFilter, query_kwargs
from core.store.healing import Healer
from core.store.ledger import (
    DocumentState,
    Entry,
    Ledger,
    Snapshot,
    abandoned,
    ledger_name,
    local_writes,
    writer_token,
)
from core.store.records import NOTHING, document_filter, scope_filter, to_row
from core.store.schema import OWNER_FIELD
from core.store.search import Routes
from core.store.views import OpenedCollection, open_collection

logger = logging.getLogger(__name__)

# Listings, counts and version checks must see every write and delete before them (on a
# server, "Session" reads missed deletes made through the async client); searches, the hot
# path, stay at the collection's "Session" level.
READ_CONSISTENCY = "Strong"
SETTLE_TRIES = 3  # listings and counts re-run while the ledger changes under them
# Milvus Lite leaves out of a read the rows a flush is moving from its buffer to a segment
# (`Capabilities.short_reads`). Within one process a read that matters cannot meet that (a
# commit flushes its rows first, and flushes take turns), but processes sharing one
# `milvus-lite server` can: there reads that decide what to commit or delete are taken
# again (a short count at most this many times, after this pause).
SHORT_READ_TRIES = 4
SHORT_READ_PAUSE = 0.05
# Rows a bulk load (`open(bulk_load=True)`) on Milvus Lite inserts between flushes. Lite
# scores BM25 with each segment's own statistics (document count, average length, term
# frequencies: milvus_lite's `Collection._search_sparse`), and every flush makes a segment,
# so flushing per document or every `Capabilities.flush_every` rows left a corpus in
# segments of a few dozen to a few hundred rows whose keyword scores disagreed (the same
# corpus ranked differently from one ingest to the next). Segments of this many rows give
# statistics close to the whole corpus's, while a count over the unflushed rows, which
# each commit makes, stays under ~70 ms (Lite scans them at ~35 us a row).
BULK_FLUSH_EVERY = 2048

T = TypeVar("T")


class MilvusKnowledgeBase:
    """One collection, seen through the app's vocabulary. Build it with `open`."""

    def __init__(
        self,
        settings: Settings,
        embeddings: Embeddings,
        opened: OpenedCollection,
        name: str,
        *,
        bulk_load: bool = False,
    ) -> None:
        self._settings = settings
        self._client = opened.client
        self._store = opened.dense
        self._keyword = opened.keyword
        self._capabilities = opened.capabilities
        self._layout = opened.layout
        self._collection = name
        self._timeout = settings.milvus_timeout
        self._routes = Routes(
            dense=opened.dense,
            keyword=opened.keyword,
            embeddings=embeddings,
            collection=name,
            timeout=settings.milvus_timeout,
            templating=opened.capabilities.filter_templates,
        )
        self._ledger = Ledger(
            self._aclient,
            name,
            settings.milvus_timeout,
            lag=opened.capabilities.ledger_lag,
            local=local_writes(ledger_name(name)) if settings.uses_milvus_lite else None,
        )
        self._healer = Healer(
            self._aclient,
            (name, ledger_name(name)),
            label=opened.capabilities.label,
            timeout=settings.milvus_timeout,
        )
        self._writer = writer_token()
        # A bulk load into Milvus Lite in this process has the data to itself (Lite locks
        # its directory), so no search can miss rows that a flush moves: it flushes in
        # large batches, never per commit (see BULK_FLUSH_EVERY).
        self._bulk = bulk_load and settings.uses_milvus_lite
        every = opened.capabilities.flush_every
        self._flush_every = BULK_FLUSH_EVERY if self._bulk and every is not None else every
        self._unflushed = 0  # rows this process inserted since its last flush
        # Flushes take turns here so that a commit can wait for one in flight (Milvus Lite
        # hides the rows a flush moves until it ends) and a bulk commit can hold them off;
        # the store view keeps every flush apart from other flushes and from writes.
        self._flushing = asyncio.Lock()
        # How long a deleted version stays in the ledger: longer than any search that
        # could still have seen its chunks (a search and its one retry).
        self._grace = max(60.0, 3 * settings.milvus_timeout)

    @classmethod
    async def open(
        cls,
        settings: Settings,
        embeddings: Embeddings,
        *,
        collection: str | None = None,
        drop: bool = False,
        bulk_load: bool = False,
    ) -> MilvusKnowledgeBase:
        """Connect, probe, create or check the collection and its ledger, load them (the
        blocking parts run in a worker thread), and sweep away what interrupted writes
        left behind.

        `bulk_load`: the caller loads a corpus and nothing else uses the store meanwhile
        (the ingest CLI); on Milvus Lite in this process rows are then flushed in large
        batches, which keyword search needs (see BULK_FLUSH_EVERY). Ignored where other
        processes may be searching (a server)."""
        name = collection or settings.milvus_collection
        dim = len(await embeddings.aembed_query("dimension probe"))
        model = settings.embedding_model_name
        opened = await asyncio.to_thread(
            open_collection, settings, embeddings, name, model=model, dim=dim, drop=drop
        )
        kb = cls(settings, embeddings, opened, name, bulk_load=bulk_load)
        await kb.sweep()
        return kb

    # ----- what it is ------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._collection

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    @property
    def keyword_search(self) -> bool:
        return self._layout.keyword_search

    # ----- searching -------------------------------------------------------------------

    async def search(self, request: SearchRequest) -> list[Hit]:
        """Search within the request's scope and sources, in its mode (see `SearchMode`).

        Each route is langchain-milvus's async search: by the question's vector on the
        dense view (`asimilarity_search_with_score_by_vector`; embedded once per search),
        by its text on the BM25 view (the collection's built-in BM25 function);
        hybrid fuses them (relative score fusion, or reciprocal rank: `request.fusion`);
        MMR re-ranks the fused candidates on their dense vectors. Where the collection has
        no BM25 field, keyword routes fall back to dense (`effective_mode`). Only
        committed versions are found (`_committed`).
        """
        mode = effective_mode(request.mode, self.keyword_search)
        where = scope_filter(request.scope, request.sources)
        if where is NOTHING:
            return []

        vector = self._routes.query_vector(request.query)  # made once, if a route needs it

        async def run(hidden: MilvusFilter | None) -> list[Hit]:
            return await self._routes.run(mode, request, MilvusFilter.all_of(where, hidden), vector)

        return await self._call("search the knowledge base", lambda: self._committed(run))

    async def _committed(
        self, run: Callable[[MilvusFilter | None], Awaitable[list[Hit]]]
    ) -> list[Hit]:
        """Run a search that leaves out hidden versions, with a ledger copy current when it
        starts as its filter, then check the hits against a ledger read that started after
        the search ended, less the backend's lag (writers wait that long before touching
        chunks): another process may have registered a pending version, or committed one,
        meanwhile. Hits of versions hidden by then are dropped; the search runs once more
        (on the same question vector) with what the ledger says now when that dropped a
        hit, or when a version the search could show was replaced or removed meanwhile
        (the document could otherwise be missing from the hits altogether).

        During an ingest the ledger changes with every document, so both rules matter
        for speed (issue 11): filtered by the last copy read, nearly every search during
        an ingest ran twice, and re-running on any change still re-ran those that met a
        new document's registration or commit (neither can leave a document half shown:
        one is dropped from the hits, the other shows once committed)."""
        before = await self._ledger.covering_now()
        hits = await run(before.exclusion())
        after = await self._ledger.covering_now()
        shown = [h for h in hits if not after.hides(h.owner, h.source, h.file_hash)]
        if len(shown) < len(hits) or after.hides_what_was_shown(before):
            hits = await run(after.exclusion())
            after = await self._ledger.covering_now()
            shown = [h for h in hits if not after.hides(h.owner, h.source, h.file_hash)]
        return shown

    # ----- writing ---------------------------------------------------------------------

    async def add_chunks(self, chunks: Sequence[ChunkRecord]) -> None:
        """Embed and store chunks (concurrent calls share embedding and insert batches).
        A version registered with `begin_version` stays hidden until committed."""
        if not chunks:
            return

        async def insert() -> None:
            await self._store.aadd_texts(
                [c.text for c in chunks],
                metadatas=[to_row(c) for c in chunks],
                ids=[c.id for c in chunks],
                timeout=self._timeout,
            )

        # Not retried after a dropped connection: the insert may have landed.
        await self._call("store the document", insert, retry_unreachable=False)
        self._unflushed += len(chunks)
        if self._flush_every is not None and self._unflushed >= self._flush_every:
            await self.flush()

    async def stored_versions(self, document: DocumentKey) -> list[StoredVersion]:
        """Each version of a document in the store, with its declared and stored chunks
        and whether it is the committed one."""
        hidden = (await self._read_ledger()).state_of(document).versions
        firsts = await self._query(
            document_filter(document) & MilvusFilter.equals("chunk", 0),
            ["file_hash", "chunks"],
        )
        versions = []
        for row in firsts:
            file_hash = str(row["file_hash"])
            where = document_filter(document) & MilvusFilter.equals("file_hash", file_hash)
            stored = await self._count(where)
            versions.append(
                StoredVersion(file_hash, int(row["chunks"]), stored, file_hash not in hidden)
            )
        stray = await self._count(document_filter(document)) - sum(v.stored for v in versions)
        if stray > 0:  # chunks of an interrupted write whose first chunk never landed
            versions.append(StoredVersion(UNKNOWN_VERSION, declared=0, stored=stray))
        return versions

    async def begin_version(self, document: DocumentKey, file_hash: str) -> None:
        """Register `file_hash` as pending (hidden) before any of its chunks is written,
        and remove what an earlier, interrupted write of it left. Refuses while another
        live process is writing the same document."""
        state = (await self._read_ledger()).state_of(document)
        now = self._ledger.now()
        for entry in state.versions.values():
            if entry.state == "pending" and entry.writer != self._writer:
                if not abandoned(entry, now):
                    raise StoreWriteFailed(
                        "another process is writing this document right now; try again "
                        "when it has finished"
                    )
        await self._write_ledger(state.with_version(file_hash, Entry("pending", now, self._writer)))
        await self._ledger.let_readers_catch_up()
        await self._delete(document_filter(document) & MilvusFilter.equals("file_hash", file_hash))

    async def commit_version(self, document: DocumentKey, file_hash: str, chunks: int) -> None:
        """Show `file_hash` and hide every other version of the document in one ledger
        write (the atomic switch), then delete the others' chunks."""
        if self._bulk:
            # No flush may move rows while the commit counts them; nobody else searches.
            async with self._flushing:
                await self._commit(document, file_hash, chunks)
            return
        if self._flush_every is not None:
            # Milvus Lite's flush swaps in an empty buffer before the rows it held reach
            # their segment, and a search meanwhile sees none of them (3% of searches
            # beside a stream of flushes missed a committed document). Rows are flushed
            # before they become visible, so a later flush only ever moves hidden ones.
            await self._flush_buffered()
        await self._commit(document, file_hash, chunks)

    async def _commit(self, document: DocumentKey, file_hash: str, chunks: int) -> None:
        mine = document_filter(document)
        stored = await self._count_at_least(
            mine & MilvusFilter.equals("file_hash", file_hash), chunks
        )
        if stored < chunks:
            raise StoreWriteFailed(
                f"only {stored} of its {chunks} chunks are in the knowledge base (another "
                "process removed or replaced it meanwhile); nothing was changed"
            )
        if stored > chunks:
            raise StoreWriteFailed(
                f"{stored} chunks of it are in the knowledge base where {chunks} were "
                "written (another process wrote the same version meanwhile); nothing was "
                "changed"
            )
        snapshot = await self._read_ledger()
        state = snapshot.state_of(document)
        in_store = {file_hash for _, _, file_hash in await self._versions_in_store(mine)}
        others = (in_store | set(state.hashes("pending", "superseded"))) - {file_hash}
        now = self._ledger.now()
        switched = self._expire(state).with_version(file_hash, None)
        for other in others:
            switched = switched.with_version(other, Entry("superseded", now))
        switched = await self._write_ledger(switched)
        self._ledger.outdate_copies_before(time.monotonic())  # found by our next search
        if others:
            await self._ledger.let_readers_catch_up()
            await self._delete(mine & MilvusFilter.not_equals("file_hash", file_hash))
            for other in others:
                switched = switched.with_version(other, Entry("gone", self._ledger.now()))
            await self._write_ledger(switched)
        await self._tidy(snapshot, skip=document)

    async def delete_version(self, document: DocumentKey, file_hash: str) -> None:
        """Remove one version's chunks (an abandoned write): hidden first, then deleted,
        then remembered as gone for the grace period."""
        state = (await self._read_ledger()).state_of(document)
        if file_hash not in state.versions:
            now = self._ledger.now()
            state = await self._write_ledger(
                state.with_version(file_hash, Entry("superseded", now))
            )
            await self._ledger.let_readers_catch_up()
        await self._delete(document_filter(document) & MilvusFilter.equals("file_hash", file_hash))
        await self._write_ledger(state.with_version(file_hash, Entry("gone", self._ledger.now())))

    async def remove_document(self, source: str, scope: AccessScope) -> int:
        """Delete every chunk of the documents named `source` within `scope`; returns
        how many visible chunks went. The visible versions are hidden first (superseded
        in the ledger), so a removal cut short leaves none of them half there: the next
        sweep deletes what it hid. A version another writer is still writing is left to
        it (its commit then finds the document changed)."""
        where = scope_filter(scope, (source,))
        if where is NOTHING or where is None:
            return 0
        snapshot = await self._read_ledger()
        visible = MilvusFilter.all_of(where, snapshot.exclusion())
        existing = await self._count_at_least(visible, 1)
        if not existing:
            return 0
        found: dict[DocumentKey, set[str]] = {}
        for row_owner, row_source, row_hash in await self._versions_in_store(visible):
            found.setdefault(DocumentKey(row_owner, row_source), set()).add(row_hash)
        hidden: dict[DocumentKey, DocumentState] = {}
        for document, hashes in found.items():
            state = (await self._read_ledger()).state_of(document)
            for file_hash in hashes:
                state = state.with_version(file_hash, Entry("superseded", self._ledger.now()))
            hidden[document] = await self._write_ledger(state)
        await self._ledger.let_readers_catch_up()
        writing = snapshot.exclusion("pending")
        await self._delete(where if writing is None else where & writing)
        await self.flush()
        for document, state in hidden.items():
            for file_hash in found[document]:
                state = state.with_version(file_hash, Entry("gone", self._ledger.now()))
            await self._write_ledger(state)
        return existing

    async def flush(self) -> None:
        """Persist and index what was written (Milvus Lite searches unflushed rows slowly)."""
        async with self._flushing:
            await self._flush_now()

    async def _flush_buffered(self) -> None:
        """Flush if this process inserted rows since its last flush; a flush in flight
        is waited for first (the rows it moves are in their segments once it ends)."""
        async with self._flushing:
            if self._unflushed:
                await self._flush_now()

    async def _flush_now(self) -> None:
        self._unflushed = 0
        await self._call(
            "save the knowledge base",
            lambda: self._store.aflush(timeout=self._timeout),
        )

    async def sweep(self) -> int:
        """Delete what interrupted writes left: chunks of pending versions whose writer
        is gone, and of replaced versions not yet deleted; forget old entries. Returns
        the number of chunks removed."""
        snapshot = await self._read_ledger()
        now = self._ledger.now()
        removed = 0
        if any(
            e.state == "superseded"
            for s in snapshot.documents.values()
            for e in s.versions.values()
        ):
            await self._ledger.let_readers_catch_up()  # one may have been superseded a moment ago
        for state in snapshot.documents.values():
            doomed = [
                h
                for h, e in state.versions.items()
                if e.state == "superseded" or (e.state == "pending" and abandoned(e, now))
            ]
            if not doomed:
                continue
            where = document_filter(state.document) & MilvusFilter.one_of(
                "file_hash", doomed, param="doomed"
            )
            removed += await self._count(where)
            await self._delete(where)
            # Read again just before writing: change only what this sweep decided about.
            latest = (await self._read_ledger()).state_of(state.document)
            swept = self._expire(latest)
            for file_hash in doomed:
                if latest.versions.get(file_hash) == state.versions[file_hash]:
                    swept = swept.with_version(file_hash, Entry("gone", now))
            await self._write_ledger(swept)
        await self._tidy(await self._read_ledger())
        if removed:
            logger.warning(
                "removed %d chunks left by interrupted writes from %s", removed, self._collection
            )
        return removed

    async def _tidy(self, snapshot: Snapshot, skip: DocumentKey | None = None) -> None:
        """Drop the ledger rows of documents whose hidden versions were all deleted
        longer ago than the grace period. Only that exact row goes: a newer state another
        process wrote meanwhile is a different row and stays."""
        for document, state in snapshot.documents.items():
            if document != skip and state.versions and not self._expire(state).versions:
                await self._call("record a document version", partial(self._ledger.forget, state))

    def _expire(self, state: DocumentState) -> DocumentState:
        """`state` without the versions deleted longer ago than the grace period."""
        now = self._ledger.now()
        for file_hash, entry in list(state.versions.items()):
            if entry.state == "gone" and now - entry.since > self._grace:
                state = state.with_version(file_hash, None)
        return state

    # ----- listing ---------------------------------------------------------------------

    async def list_documents(self, scope: AccessScope) -> list[DocumentInfo]:
        """The documents in scope, newest first (the first chunk of each document's
        committed version describes it; a committed version is always complete)."""
        where = scope_filter(scope, ())
        if where is NOTHING:
            return []

        async def firsts(hidden: MilvusFilter | None) -> list[dict[str, Any]]:
            return await self._query(
                MilvusFilter.all_of(where, hidden, MilvusFilter.equals("chunk", 0)),
                ["source", OWNER_FIELD, "chunks", "added_at", "chat_id", INGEST_VERSION_FIELD],
            )

        docs = [
            DocumentInfo(
                source=str(row["source"]),
                owner=str(row[OWNER_FIELD]),
                chunks=int(row["chunks"]),
                added_at=int(row["added_at"]) or None,
                chat_id=str(row["chat_id"]) or None,
                ingest_version=str(row.get(INGEST_VERSION_FIELD) or "") or None,
            )
            for row in await self._settled(firsts)
        ]
        return sorted(docs, key=lambda d: (-(d.added_at or 0), d.source, d.owner))

    async def count(self, scope: AccessScope) -> int:
        """The chunks of committed versions in scope."""
        where = scope_filter(scope, ())
        if where is NOTHING:
            return 0

        async def counted(hidden: MilvusFilter | None) -> int:
            return await self._count(MilvusFilter.all_of(where, hidden))

        return await self._settled(counted)

    async def ping(self) -> str:
        """ "ready", or what is wrong, from the collection's load state (one short call)."""
        state = await self._call(
            "check the knowledge base",
            lambda: self._store.aclient.get_load_state(self._collection, timeout=self._timeout),
            retry_unreachable=False,
        )
        loaded = "Loaded" in str(state.get("state"))
        return "ready" if loaded else "not loaded (it loads again with the next question)"

    async def close(self) -> None:
        """Close both clients (Milvus Lite keeps its directory lock until the process
        exits, whatever we do)."""
        await self._ledger.close()
        with contextlib.suppress(Exception):
            await self._store.aclient.close()
        await asyncio.to_thread(self._client.close)

    # ----- internals -------------------------------------------------------------------

    def _aclient(self) -> AsyncMilvusClient:
        return self._store.aclient

    async def _call(
        self, action: str, run: Callable[[], Awaitable[T]], *, retry_unreachable: bool = True
    ) -> T:
        return await self._healer.call(action, run, retry_unreachable=retry_unreachable)

    async def _settled(self, run: Callable[[MilvusFilter | None], Awaitable[T]]) -> T:
        """`run` with the hidden versions left out, re-run while the ledger changed
        during it (a version registered or committed meanwhile)."""
        before = await self._read_ledger()
        for _ in range(SETTLE_TRIES):
            result = await run(before.exclusion())
            after = await self._read_ledger()
            if after == before:
                break
            before = after
        return result

    async def _read_ledger(self) -> Snapshot:
        return await self._call("read the knowledge base", self._ledger.fresh)

    async def _write_ledger(self, state: DocumentState) -> DocumentState:
        return await self._call("record a document version", lambda: self._ledger.write(state))

    async def _query(
        self, where: MilvusFilter | None, fields: list[str], limit: int = MAX_QUERY_ROWS
    ) -> list[dict[str, Any]]:
        async def query() -> list[dict[str, Any]]:
            return list(
                await self._store.aclient.query(
                    self._collection,
                    output_fields=fields,
                    limit=limit,
                    timeout=self._timeout,
                    consistency_level=READ_CONSISTENCY,
                    **query_kwargs(where, templating=self._capabilities.filter_templates),
                )
            )

        return await self._call("read the knowledge base", query)

    async def _count_at_least(self, where: MilvusFilter | None, expected: int) -> int:
        """How many chunks match `where`, on Milvus Lite read again while fewer than
        `expected` do: a read during a flush there can miss rows that are there (never
        the other way), for some 10-30 ms."""
        tries = SHORT_READ_TRIES if self._capabilities.short_reads else 1
        stored = await self._count(where)
        for _ in range(tries - 1):
            if stored >= expected:
                break
            await asyncio.sleep(SHORT_READ_PAUSE)
            stored = await self._count(where)
        return stored

    async def _versions_in_store(self, where: MilvusFilter | None) -> set[tuple[str, str, str]]:
        """The (owner, source, file_hash) of the chunks matching `where`, on Milvus Lite from
        two reads a moment apart: one that ran during a flush may miss some (see
        `_count_at_least`), and a version missed here would stay visible beside the new."""
        fields = [OWNER_FIELD, "source", "file_hash"]
        found: set[tuple[str, str, str]] = set()
        for attempt in range(2 if self._capabilities.short_reads else 1):
            if attempt:
                await asyncio.sleep(SHORT_READ_PAUSE)
            rows = await self._query(where, fields)
            found |= {(str(r[OWNER_FIELD]), str(r["source"]), str(r["file_hash"])) for r in rows}
        return found

    async def _count(self, where: MilvusFilter | None) -> int:
        async def count() -> Any:
            return await self._store.aclient.query(
                self._collection,
                output_fields=["count(*)"],
                timeout=self._timeout,
                consistency_level=READ_CONSISTENCY,
                **query_kwargs(where, templating=self._capabilities.filter_templates),
            )

        rows = await self._call("read the knowledge base", count)
        return int(rows[0]["count(*)"]) if rows else 0

    async def _delete(self, where: MilvusFilter) -> None:
        """Delete matching chunks; raises when Milvus refuses (langchain-milvus's `adelete`
        only logs the error and returns False)."""

        async def delete() -> bool | None:
            return await self._store.adelete(
                timeout=self._timeout,
                **where.as_kwargs(templating=self._capabilities.filter_templates),
            )

        if await self._call("delete from the knowledge base", delete) is False:
            raise StoreUnavailable(
                f"Milvus refused to delete from the knowledge base '{self._collection}'."
            )
