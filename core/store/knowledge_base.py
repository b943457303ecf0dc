"""The knowledge base: the app's one door to Milvus.

`MilvusKnowledgeBase.open(settings, embeddings)` connects, probes the backend, creates
the collection (schema v2) when it is missing or checks it when it exists, and returns a
handle whose methods speak the app's terms (`core.knowledge`). Every read and delete is
narrowed by an `AccessScope`; filters are rendered here (templates where the backend
takes them, escaped literals elsewhere); every call carries the configured timeout; and
Milvus failures leave as `StoreUnavailable` with a message for the person asking.

It must be opened inside the event loop that will use it: the async Milvus client binds
to the loop of its first call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

from langchain_core.embeddings import Embeddings
from pymilvus import MilvusException

from core.errors import StoreUnavailable
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
from core.store.connection import reason
from core.store.filters import MilvusFilter, query_kwargs
from core.store.records import NOTHING, document_filter, scope_filter, to_row
from core.store.schema import (
    OWNER_FIELD,
)
from core.store.search import Routes
from core.store.views import OpenedCollection, open_collection

logger = logging.getLogger(__name__)

MAX_QUERY_ROWS = 16384  # Milvus caps offset + limit of one query at this
# Listings, counts and version checks must see every write and delete before them (on a
# server, "Session" reads missed deletes made through the async client); searches, the hot
# path, stay at the collection's "Session" level.
READ_CONSISTENCY = "Strong"


class MilvusKnowledgeBase:
    """One collection, seen through the app's vocabulary. Build it with `open`."""

    def __init__(
        self, settings: Settings, embeddings: Embeddings, opened: OpenedCollection, name: str
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

    @classmethod
    async def open(
        cls,
        settings: Settings,
        embeddings: Embeddings,
        *,
        collection: str | None = None,
        drop: bool = False,
    ) -> MilvusKnowledgeBase:
        """Connect, probe, create or check the collection, and load it (the blocking
        parts run in a worker thread)."""
        name = collection or settings.milvus_collection
        dim = len(await embeddings.aembed_query("dimension probe"))
        model = settings.embedding_model_name
        opened = await asyncio.to_thread(
            open_collection, settings, embeddings, name, model=model, dim=dim, drop=drop
        )
        return cls(settings, embeddings, opened, name)

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

        Each route is langchain-milvus's async search: `asimilarity_search_with_score` on
        the dense view, and on the BM25 view (the collection's built-in BM25 function);
        hybrid fuses them by reciprocal rank; MMR re-ranks the fused candidates on their
        dense vectors. Where the collection has no BM25 field, keyword routes fall back
        to dense (`effective_mode`).
        """
        mode = effective_mode(request.mode, self.keyword_search)
        where = scope_filter(request.scope, request.sources)
        if where is NOTHING:
            return []
        with self._failures("search the knowledge base"):
            return await self._routes.run(mode, request, where)

    # ----- writing ---------------------------------------------------------------------

    async def add_chunks(self, chunks: Sequence[ChunkRecord]) -> None:
        """Embed and store chunks (concurrent calls share embedding and insert batches)."""
        if not chunks:
            return
        with self._failures("store the document"):
            await self._store.aadd_texts(
                [c.text for c in chunks],
                metadatas=[to_row(c) for c in chunks],
                ids=[c.id for c in chunks],
                timeout=self._timeout,
            )

    async def stored_versions(self, document: DocumentKey) -> list[StoredVersion]:
        """Each version of a document in the store, with its declared and stored chunks."""
        firsts = await self._query(
            document_filter(document) & MilvusFilter.equals("chunk", 0),
            ["file_hash", "chunks"],
        )
        versions = []
        for row in firsts:
            file_hash = str(row["file_hash"])
            where = document_filter(document) & MilvusFilter.equals("file_hash", file_hash)
            versions.append(StoredVersion(file_hash, int(row["chunks"]), await self._count(where)))
        stray = await self._count(document_filter(document)) - sum(v.stored for v in versions)
        if stray > 0:  # chunks of an interrupted write whose first chunk never landed
            versions.append(StoredVersion(UNKNOWN_VERSION, declared=0, stored=stray))
        return versions

    async def delete_version(self, document: DocumentKey, file_hash: str) -> None:
        await self._delete(document_filter(document) & MilvusFilter.equals("file_hash", file_hash))

    async def delete_other_versions(self, document: DocumentKey, keep: str) -> None:
        await self._delete(document_filter(document) & MilvusFilter.not_equals("file_hash", keep))

    async def remove_document(self, source: str, scope: AccessScope) -> int:
        """Delete every chunk of the documents named `source` within `scope`; returns
        how many chunks went."""
        where = scope_filter(scope, (source,))
        if where is NOTHING or where is None:
            return 0
        existing = await self._count(where)
        if existing:
            await self._delete(where)
            await self.flush()
        return existing

    async def flush(self) -> None:
        """Persist and index what was written (Milvus Lite searches unflushed rows slowly)."""
        with self._failures("save the knowledge base"):
            await self._store.aclient.flush(self._collection, timeout=self._timeout)

    # ----- listing ---------------------------------------------------------------------

    async def list_documents(self, scope: AccessScope) -> list[DocumentInfo]:
        """The documents in scope, newest first (each document's chunk 0 describes it)."""
        where = scope_filter(scope, ())
        if where is NOTHING:
            return []
        rows = await self._query(
            MilvusFilter.all_of(where, MilvusFilter.equals("chunk", 0)),
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
            for row in rows
        ]
        return sorted(docs, key=lambda d: (-(d.added_at or 0), d.source, d.owner))

    async def count(self, scope: AccessScope) -> int:
        where = scope_filter(scope, ())
        return 0 if where is NOTHING else await self._count(where)

    async def close(self) -> None:
        """Close both clients (Milvus Lite keeps its directory lock until the process
        exits, whatever we do)."""
        with contextlib.suppress(Exception):
            await self._store.aclient.close()
        await asyncio.to_thread(self._client.close)

    # ----- internals -------------------------------------------------------------------

    async def _query(
        self, where: MilvusFilter | None, fields: list[str], limit: int = MAX_QUERY_ROWS
    ) -> list[dict[str, Any]]:
        with self._failures("read the knowledge base"):
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

    async def _count(self, where: MilvusFilter | None) -> int:
        with self._failures("read the knowledge base"):
            rows = await self._store.aclient.query(
                self._collection,
                output_fields=["count(*)"],
                timeout=self._timeout,
                consistency_level=READ_CONSISTENCY,
                **query_kwargs(where, templating=self._capabilities.filter_templates),
            )
        return int(rows[0]["count(*)"]) if rows else 0

    async def _delete(self, where: MilvusFilter) -> None:
        """Delete matching chunks; raises when Milvus refuses (langchain-milvus's `adelete`
        only logs the error and returns False)."""
        with self._failures("delete from the knowledge base"):
            deleted = await self._store.adelete(
                timeout=self._timeout,
                **where.as_kwargs(templating=self._capabilities.filter_templates),
            )
        if deleted is False:
            raise StoreUnavailable(
                f"Milvus refused to delete from the knowledge base '{self._collection}'."
            )

    @contextlib.contextmanager
    def _failures(self, action: str) -> Iterator[None]:
        """Turn a Milvus failure into one `StoreUnavailable` with a log line, not a trace."""
        try:
            yield
        except (MilvusException, TimeoutError, ConnectionError) as exc:
            logger.warning("could not %s on %s: %s", action, self._capabilities.label, reason(exc))
            raise StoreUnavailable(
                f"Could not {action} right now (Milvus is unreachable or timed out). "
                "Try again in a moment."
            ) from exc
