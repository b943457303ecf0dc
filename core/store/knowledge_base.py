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

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_milvus import BM25BuiltInFunction
from pymilvus import MilvusClient, MilvusException

from core.errors import StoreUnavailable
from core.fusion import diverse, reciprocal_rank_fusion
from core.knowledge import (
    UNKNOWN_VERSION,
    AccessScope,
    Capabilities,
    ChunkRecord,
    DocumentInfo,
    DocumentKey,
    Hit,
    MetadataValue,
    Route,
    SearchRequest,
    StoredVersion,
    effective_mode,
)
from core.settings import Settings
from core.store.coalescing import CoalescingMilvus
from core.store.connection import connect, connection_args, probe
from core.store.filters import MilvusFilter
from core.store.schema import (
    BM25_INDEX,
    BM25_SEARCH,
    DENSE_INDEX,
    DENSE_SEARCH,
    OWNER_FIELD,
    PRIMARY_FIELD,
    SCALAR_FIELDS,
    SPARSE_FIELD,
    TEXT_FIELD,
    VECTOR_FIELD,
    Layout,
    check_layout,
    create_collection,
    read_layout,
)

logger = logging.getLogger(__name__)

MAX_QUERY_ROWS = 16384  # Milvus caps offset + limit of one query at this
# Listings, counts and version checks must see every write and delete before them (on a
# server, "Session" reads missed deletes made through the async client); searches, the hot
# path, stay at the collection's "Session" level.
READ_CONSISTENCY = "Strong"
_NOT_METADATA = {PRIMARY_FIELD, TEXT_FIELD, VECTOR_FIELD, *SCALAR_FIELDS}


def store_kwargs(settings: Settings, collection: str) -> dict[str, Any]:
    """How langchain-milvus is set up over one of our collections: the dense vector field
    with our index and search parameters, metadata in typed and dynamic fields."""
    return {
        "collection_name": collection,
        "connection_args": connection_args(settings),
        "consistency_level": "Session",
        "index_params": DENSE_INDEX,
        "search_params": DENSE_SEARCH,
        "primary_field": PRIMARY_FIELD,
        "text_field": TEXT_FIELD,
        "vector_field": VECTOR_FIELD,
        "enable_dynamic_field": True,
        # No constructor `timeout`: langchain-milvus 0.4 then passes it twice to some
        # inserts. Timeouts go with each call instead.
    }


def keyword_store_kwargs(settings: Settings, collection: str) -> dict[str, Any]:
    """The BM25 view of a collection: searches the sparse field its BM25 function fills."""
    return {
        **store_kwargs(settings, collection),
        "vector_field": SPARSE_FIELD,
        "index_params": BM25_INDEX,
        "search_params": BM25_SEARCH,
    }


class MilvusKnowledgeBase:
    """One collection, seen through the app's vocabulary. Build it with `open`."""

    def __init__(
        self,
        *,
        settings: Settings,
        client: MilvusClient,
        embeddings: Embeddings,
        store: CoalescingMilvus,
        keyword: CoalescingMilvus | None,
        capabilities: Capabilities,
        layout: Layout,
        collection: str,
    ) -> None:
        self._settings = settings
        self._client = client
        self._embeddings = embeddings
        self._store = store
        self._keyword = keyword
        self._capabilities = capabilities
        self._layout = layout
        self._collection = collection
        self._timeout = settings.milvus_timeout

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
        model = settings.embedding_model_name
        dim = len(await embeddings.aembed_query("dimension probe"))

        def prepare() -> tuple[
            MilvusClient, Capabilities, Layout, CoalescingMilvus, CoalescingMilvus | None
        ]:
            client = connect(settings)
            timeout = settings.milvus_timeout
            with _opening(settings):
                capabilities = probe(client, timeout)
                if drop and client.has_collection(name, timeout=timeout):
                    client.drop_collection(name, timeout=timeout)
                if client.has_collection(name, timeout=timeout):
                    layout = read_layout(client.describe_collection(name, timeout=timeout))
                    check_layout(layout, name, model, dim)
                else:
                    layout = create_collection(
                        client,
                        name,
                        model=model,
                        dim=dim,
                        capabilities=capabilities,
                        timeout=timeout,
                    )
                store = CoalescingMilvus(
                    embedding_function=embeddings, **store_kwargs(settings, name)
                )
                keyword = (
                    CoalescingMilvus(
                        embedding_function=None,
                        builtin_function=BM25BuiltInFunction(
                            input_field_names=TEXT_FIELD, output_field_names=SPARSE_FIELD
                        ),
                        **keyword_store_kwargs(settings, name),
                    )
                    if layout.keyword_search
                    else None
                )
            return client, capabilities, layout, store, keyword

        client, capabilities, layout, store, keyword = await asyncio.to_thread(prepare)
        return cls(
            settings=settings,
            client=client,
            embeddings=embeddings,
            store=store,
            keyword=keyword,
            capabilities=capabilities,
            layout=layout,
            collection=name,
        )

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
        where = _scope_filter(request.scope, request.sources)
        if where is _NOTHING:
            return []
        with self._failures("search the knowledge base"):
            if mode == "dense":
                hits = await self._route("dense", request.query, request.k, where)
            elif mode == "keyword":
                hits = await self._route("keyword", request.query, request.k, where)
            elif mode == "hybrid":
                hits = (await self._fused(request, request.k, where))[: request.k]
            else:
                hits = await self._mmr(request, where)
        return hits

    async def _route(
        self, route: Route, query: str, k: int, where: MilvusFilter | None
    ) -> list[Hit]:
        store = self._store if route == "dense" else self._keyword
        assert store is not None
        found = await store.asimilarity_search_with_score(
            query, k=k, timeout=self._timeout, **self._search_filter(where)
        )
        # BM25 scores are negative on Milvus Lite, positive on a server: keep the size.
        return [
            _hit(doc, score if route == "dense" else abs(score), {route: rank})
            for rank, (doc, score) in enumerate(found, start=1)
        ]

    async def _fused(self, request: SearchRequest, k: int, where: MilvusFilter | None) -> list[Hit]:
        """The hybrid candidates: both routes, `k` each, fused (dense alone without BM25)."""
        if self._keyword is None:
            return await self._route("dense", request.query, k, where)
        dense, keyword = await asyncio.gather(
            self._route("dense", request.query, k, where),
            self._route("keyword", request.query, k, where),
        )
        routes: dict[Route, list[Hit]] = {"dense": dense, "keyword": keyword}
        return reciprocal_rank_fusion(routes, keyword_weight=request.keyword_weight)

    async def _mmr(self, request: SearchRequest, where: MilvusFilter | None) -> list[Hit]:
        candidates = (await self._fused(request, request.fetch_k, where))[: request.fetch_k]
        if not candidates:
            return []
        query_vector, rows = await asyncio.gather(
            self._embeddings.aembed_query(request.query),
            self._store.aclient.query(
                self._collection,
                output_fields=[PRIMARY_FIELD, VECTOR_FIELD],
                timeout=self._timeout,
                **self._query_filter(
                    MilvusFilter.one_of(PRIMARY_FIELD, [h.id for h in candidates])
                ),
            ),
        )
        vectors = {str(row[PRIMARY_FIELD]): row[VECTOR_FIELD] for row in rows}
        present = [hit for hit in candidates if hit.id in vectors]
        return diverse(
            present,
            [vectors[hit.id] for hit in present],
            query_vector,
            k=request.k,
            lambda_mult=request.lambda_mult,
        )

    # ----- writing ---------------------------------------------------------------------

    async def add_chunks(self, chunks: Sequence[ChunkRecord]) -> None:
        """Embed and store chunks (concurrent calls share embedding and insert batches)."""
        if not chunks:
            return
        with self._failures("store the document"):
            await self._store.aadd_texts(
                [c.text for c in chunks],
                metadatas=[_row(c) for c in chunks],
                ids=[c.id for c in chunks],
                timeout=self._timeout,
            )

    async def stored_versions(self, document: DocumentKey) -> list[StoredVersion]:
        """Each version of a document in the store, with its declared and stored chunks."""
        firsts = await self._query(
            _document_filter(document) & MilvusFilter.equals("chunk", 0),
            ["file_hash", "chunks"],
        )
        versions = []
        for row in firsts:
            file_hash = str(row["file_hash"])
            where = _document_filter(document) & MilvusFilter.equals("file_hash", file_hash)
            versions.append(StoredVersion(file_hash, int(row["chunks"]), await self._count(where)))
        stray = await self._count(_document_filter(document)) - sum(v.stored for v in versions)
        if stray > 0:  # chunks of an interrupted write whose first chunk never landed
            versions.append(StoredVersion(UNKNOWN_VERSION, declared=0, stored=stray))
        return versions

    async def delete_version(self, document: DocumentKey, file_hash: str) -> None:
        await self._delete(_document_filter(document) & MilvusFilter.equals("file_hash", file_hash))

    async def delete_other_versions(self, document: DocumentKey, keep: str) -> None:
        await self._delete(_document_filter(document) & MilvusFilter.not_equals("file_hash", keep))

    async def remove_document(self, source: str, scope: AccessScope) -> int:
        """Delete every chunk of the documents named `source` within `scope`; returns
        how many chunks went."""
        where = _scope_filter(scope, (source,))
        if where is _NOTHING or where is None:
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
        where = _scope_filter(scope, ())
        if where is _NOTHING:
            return []
        rows = await self._query(
            MilvusFilter.all_of(where, MilvusFilter.equals("chunk", 0)),
            ["source", OWNER_FIELD, "chunks", "added_at", "chat_id"],
        )
        docs = [
            DocumentInfo(
                source=str(row["source"]),
                owner=str(row[OWNER_FIELD]),
                chunks=int(row["chunks"]),
                added_at=int(row["added_at"]) or None,
                chat_id=str(row["chat_id"]) or None,
            )
            for row in rows
        ]
        return sorted(docs, key=lambda d: (-(d.added_at or 0), d.source, d.owner))

    async def count(self, scope: AccessScope) -> int:
        where = _scope_filter(scope, ())
        return 0 if where is _NOTHING else await self._count(where)

    async def close(self) -> None:
        """Close both clients (Milvus Lite keeps its directory lock until the process
        exits, whatever we do)."""
        with contextlib.suppress(Exception):
            await self._store.aclient.close()
        await asyncio.to_thread(self._client.close)

    # ----- internals -------------------------------------------------------------------

    def _search_filter(self, where: MilvusFilter | None) -> dict[str, Any]:
        if where is None:
            return {}
        return where.as_kwargs(templating=self._capabilities.filter_templates)

    def _query_filter(self, where: MilvusFilter | None) -> dict[str, Any]:
        if where is None:
            return {"filter": ""}
        return where.as_query_kwargs(templating=self._capabilities.filter_templates)

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
                    **self._query_filter(where),
                )
            )

    async def _count(self, where: MilvusFilter | None) -> int:
        with self._failures("read the knowledge base"):
            rows = await self._store.aclient.query(
                self._collection,
                output_fields=["count(*)"],
                timeout=self._timeout,
                consistency_level=READ_CONSISTENCY,
                **self._query_filter(where),
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
            logger.warning("could not %s on %s: %s", action, self._capabilities.label, _reason(exc))
            raise StoreUnavailable(
                f"Could not {action} right now (Milvus is unreachable or timed out). "
                "Try again in a moment."
            ) from exc


_NOTHING = MilvusFilter("false")  # a scope that can see nothing: no query is sent


def _scope_filter(scope: AccessScope, sources: Sequence[str]) -> MilvusFilter | None:
    """The filter for a scope and an optional list of sources (values as parameters)."""
    if scope.owners is not None and not scope.owners:
        return _NOTHING
    owners = (
        None
        if scope.owners is None
        else MilvusFilter.one_of(OWNER_FIELD, sorted(set(scope.owners)), param="owners")
    )
    chat = None if scope.chat_id is None else MilvusFilter.equals("chat_id", scope.chat_id)
    source = None
    if len(sources) == 1:
        source = MilvusFilter.equals("source", sources[0])
    elif sources:
        source = MilvusFilter.one_of("source", list(sources), param="sources")
    return MilvusFilter.all_of(owners, chat, source)


def _document_filter(document: DocumentKey) -> MilvusFilter:
    return MilvusFilter.equals(OWNER_FIELD, document.owner) & MilvusFilter.equals(
        "source", document.source
    )


def _row(chunk: ChunkRecord) -> dict[str, MetadataValue]:
    """A chunk's metadata as the collection's fields (absent values as sentinels)."""
    return {
        **chunk.extra,
        "source": chunk.document.source,
        OWNER_FIELD: chunk.document.owner,
        "chat_id": chunk.chat_id or "",
        "page": chunk.page or 0,
        "chunk": chunk.chunk,
        "chunks": chunk.chunks,
        "file_hash": chunk.file_hash,
        "added_at": chunk.added_at,
    }


def _hit(doc: Document, score: float | None, ranks: dict[Route, int]) -> Hit:
    meta = doc.metadata
    return Hit(
        id=str(meta.get(PRIMARY_FIELD, "")),
        text=doc.page_content,
        source=str(meta.get("source", "")),
        owner=str(meta.get(OWNER_FIELD, "")),
        chunk=int(meta.get("chunk") or 0),
        page=int(meta.get("page") or 0) or None,
        score=round(float(score), 4) if score is not None else None,
        chat_id=str(meta.get("chat_id") or "") or None,
        extra={k: v for k, v in meta.items() if k not in _NOT_METADATA},
        ranks=ranks,
    )


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "message", None) or exc or type(exc).__name__)


@contextlib.contextmanager
def _opening(settings: Settings) -> Iterator[None]:
    """Milvus failures while opening become one readable `StoreUnavailable`."""
    try:
        yield
    except MilvusException as exc:
        raise StoreUnavailable(
            f"Cannot open the knowledge base at {settings.milvus_address}: {_reason(exc)}"
        ) from None
