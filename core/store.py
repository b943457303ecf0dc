"""The Milvus vector store: connection, schema, index, and the knowledge-base handle.

`KnowledgeBase.open(settings, embeddings)` must be awaited inside the event loop that will
use it: the async Milvus client binds to the loop of its first call.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_milvus import Milvus
from pymilvus import MilvusException
from pymilvus.exceptions import ConnectionConfigException

from core.coalesce import Coalescer
from core.errors import EmbeddingMismatch, StoreLocked, StoreUnavailable
from core.filters import MilvusFilter
from core.settings import Settings

logger = logging.getLogger(__name__)

PRIMARY_FIELD = "pk"
TEXT_FIELD = "text"
VECTOR_FIELD = "vector"
METRIC = "COSINE"
INDEX_PARAMS = {
    "index_type": "HNSW",
    "metric_type": METRIC,
    "params": {"M": 16, "efConstruction": 200},
}
SEARCH_PARAMS = {"metric_type": METRIC, "params": {"ef": 128}}
MAX_QUERY_ROWS = 16384  # Milvus caps offset + limit of one query at this


@dataclass(frozen=True)
class DocumentInfo:
    """One document in the knowledge base, as recorded on its first chunk."""

    source: str
    chunks: int
    added_at: int | None
    uploaded_by: str | None = None
    chat_id: str | None = None


class KnowledgeStore(Milvus):
    """langchain-milvus's store, with concurrent calls coalesced and writes serialized.

    Callers use the usual async API; underneath, concurrent one-vector searches with the
    same parameters become one multi-vector `search`, concurrent inserts one `insert`, and
    concurrent deletes by expression one `delete` (see `core.coalesce`). Inserts are also
    serialized: Milvus Lite requires it, and concurrent first inserts into a missing
    collection otherwise race to create it and lose documents.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._write_lock = asyncio.Lock()
        self._searches: Coalescer[tuple[Any, ...], list[float], Any] = Coalescer(self._search_batch)
        self._inserts: Coalescer[tuple[Any, ...], _Insert, list[str]] = Coalescer(
            self._insert_batch
        )
        self._deletes: Coalescer[tuple[Any, ...], str, bool] = Coalescer(self._delete_batch)

    # searches ---------------------------------------------------------------------

    async def _acollection_search(
        self,
        embedding_or_text: list[float] | dict[int, float] | str,
        k: int = 4,
        param: dict[str, Any] | None = None,
        expr: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109  (the library signature)
        **kwargs: Any,
    ) -> Any:
        if not isinstance(embedding_or_text, list) or self._is_multi_vector:
            return await super()._acollection_search(
                embedding_or_text, k, param, expr, timeout, **kwargs
            )
        if self.col is None:
            return None
        key = (k, _frozen(param), expr, timeout, _frozen(kwargs))
        return await self._searches.submit(key, embedding_or_text)

    async def _search_batch(self, key: tuple[Any, ...], vectors: list[list[float]]) -> list[Any]:
        k, param, expr, timeout, kwargs = key
        result = await self.aclient.search(
            self.collection_name,
            data=vectors,
            anns_field=self._vector_field,
            search_params=_thawed(param) or self._as_list(self.search_params)[0],
            limit=k,
            filter=expr,
            output_fields=self._get_output_fields(),
            timeout=self.timeout or timeout,
            **(_thawed(kwargs) or {}),
        )
        return [[hits] for hits in result]  # each caller gets a one-query result

    # inserts ----------------------------------------------------------------------

    async def aadd_embeddings(  # type: ignore[override]
        self,
        texts: list[str],
        embeddings: list[list[float]],
        metadatas: list[dict[str, Any]] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109  (the library signature)
        batch_size: int = 1000,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        if self._is_multi_embedding or not texts:
            async with self._write_lock:
                return await super().aadd_embeddings(
                    texts, embeddings, metadatas, timeout, batch_size, ids=ids, **kwargs
                )
        key = (ids is None, metadatas is None, timeout, batch_size, _frozen(kwargs))
        return await self._inserts.submit(key, _Insert(texts, embeddings, metadatas, ids))

    async def _insert_batch(self, key: tuple[Any, ...], inserts: list[_Insert]) -> list[list[str]]:
        _, no_metadata, timeout, batch_size, kwargs = key
        async with self._write_lock:
            pks = await super().aadd_embeddings(
                [t for i in inserts for t in i.texts],
                [e for i in inserts for e in i.embeddings],
                None if no_metadata else [m for i in inserts for m in i.metadatas or []],
                timeout,
                batch_size,
                ids=None if inserts[0].ids is None else [x for i in inserts for x in i.ids or []],
                **(_thawed(kwargs) or {}),
            )
        out, start = [], 0
        for insert in inserts:
            out.append(pks[start : start + len(insert.texts)])
            start += len(insert.texts)
        return out

    # deletes ----------------------------------------------------------------------

    async def adelete(
        self, ids: list[str] | None = None, expr: str | None = None, **kwargs: Any
    ) -> bool | None:
        if ids or expr is None or "filter_params" in kwargs:
            return await super().adelete(ids, expr, **kwargs)
        return await self._deletes.submit(_frozen(kwargs), expr)

    async def _delete_batch(self, key: tuple[Any, ...], exprs: list[str]) -> list[bool]:
        ok = await super().adelete(expr=_merge_filters(exprs), **(_thawed(key) or {}))
        return [bool(ok)] * len(exprs)


@dataclass(frozen=True)
class _Insert:
    texts: list[str]
    embeddings: list[list[float]]
    metadatas: list[dict[str, Any]] | None
    ids: list[str] | None


_EQUALS = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*==\s*("(?:[^"\\]|\\.)*"|-?\d+)\s*$')


def _merge_filters(exprs: list[str]) -> str:
    """One filter matching what any of `exprs` matches: equality tests on one field become
    `field in [...]` (much cheaper to evaluate than a chain of `or`)."""
    if len(exprs) == 1:
        return exprs[0]
    matches = [_EQUALS.match(e) for e in exprs]
    if all(matches) and len({m.group(1) for m in matches if m}) == 1:
        field = matches[0].group(1)  # type: ignore[union-attr]
        return f"{field} in [{', '.join(m.group(2) for m in matches if m)}]"
    return " or ".join(f"({e})" for e in exprs)


def _frozen(value: Any) -> Any:
    """A hashable form of search / insert keyword arguments (for grouping calls)."""
    return json.dumps(value, sort_keys=True, default=repr) if value else None


def _thawed(value: Any) -> Any:
    return json.loads(value) if value else None


@dataclass(frozen=True)
class EmbeddingRecord:
    """What a collection remembers, as collection properties, about the model that built it."""

    model: str
    dim: int

    MODEL_KEY = "rag_chat.embedding_model"
    DIM_KEY = "rag_chat.embedding_dim"

    def as_properties(self) -> dict[str, str]:
        return {self.MODEL_KEY: self.model, self.DIM_KEY: str(self.dim)}

    @classmethod
    def from_properties(cls, properties: dict[str, Any]) -> EmbeddingRecord | None:
        try:
            return cls(model=str(properties[cls.MODEL_KEY]), dim=int(properties[cls.DIM_KEY]))
        except (KeyError, TypeError, ValueError):
            return None


def supports_templating(server_version: str) -> bool:
    """Filter templating came with Milvus 2.5; Milvus Lite does not implement it."""
    if "lite" in server_version.lower():
        return False
    match = re.search(r"(\d+)\.(\d+)", server_version)
    if match is None:
        return False
    return (int(match.group(1)), int(match.group(2))) >= (2, 5)


def connection_args(settings: Settings) -> dict[str, Any]:
    """pymilvus connection arguments for Milvus Lite (a path) or a Milvus server."""
    if settings.milvus_uri is None:
        path = settings.milvus_lite_path.resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return {"uri": str(path)}
    args: dict[str, Any] = {"uri": settings.milvus_uri}
    if settings.milvus_token is not None:
        args["token"] = settings.milvus_token.get_secret_value()
    return args


def _lite_dir_locked(path: Path) -> bool:
    """True when another process holds Milvus Lite's lock on `path`."""
    lock_file = path / "LOCK"
    if not lock_file.exists():
        return False
    with lock_file.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def _locked_message(path: Path) -> str:
    return (
        f"The Milvus Lite data at {path} is in use by another process (most likely the "
        "running app). Milvus Lite allows one process per data directory. Either stop the "
        "other process, or share the data through a local server:\n"
        f"  milvus-lite server --data-dir {path} --host 127.0.0.1 --port 19541\n"
        "and set MILVUS_URI=http://127.0.0.1:19541 for both the app and the ingest."
    )


class KnowledgeBase:
    """The app's handle on one collection: creation, appends, queries, deletes, stats.

    Search goes through `self.store` (langchain-milvus's async search methods); writes go
    through `add_texts`, which creates a missing collection with `Milvus.afrom_texts`.
    """

    def __init__(
        self,
        settings: Settings,
        embeddings: Embeddings,
        store: KnowledgeStore,
        *,
        collection: str,
        exists: bool,
    ) -> None:
        self.settings = settings
        self.embeddings = embeddings
        self.store = store
        self.collection = collection
        self.record = EmbeddingRecord(model=settings.embedding_model_name, dim=0)
        self._exists = exists
        self._create_lock = asyncio.Lock()
        self.templating = False  # whether filters may be sent as templates; set by open()

    # ----- opening -------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        settings: Settings,
        embeddings: Embeddings,
        *,
        collection: str | None = None,
        drop: bool = False,
    ) -> KnowledgeBase:
        """Connect (off the event loop), optionally drop, and check the embedding record."""
        name = collection or settings.milvus_collection
        store = await asyncio.to_thread(_construct_store, settings, embeddings, name, drop)
        kb = cls(settings, embeddings, store, collection=name, exists=store.col is not None)
        version = await store.aclient.get_server_version(timeout=settings.milvus_timeout)
        kb.templating = supports_templating(str(version))
        dim = len(await embeddings.aembed_query("dimension probe"))
        kb.record = EmbeddingRecord(model=settings.embedding_model_name, dim=dim)
        if kb._exists:
            await asyncio.to_thread(kb._check_record)
        return kb

    def _check_record(self) -> None:
        info = self.store.client.describe_collection(self.collection)
        stored = EmbeddingRecord.from_properties(info.get("properties") or {})
        dim = _vector_dim(info)
        fix = (
            f"Either set EMBEDDINGS / EMBEDDING_MODEL back to what built it, or rebuild the "
            f"collection: python -m ingest PATH --collection {self.collection} --drop"
        )
        if stored is not None and stored.model != self.record.model:
            raise EmbeddingMismatch(
                f"Collection '{self.collection}' was built with the embedding model "
                f"'{stored.model}' ({stored.dim} dimensions), but the configured model is "
                f"'{self.record.model}' ({self.record.dim} dimensions). {fix}"
            )
        if dim is not None and dim != self.record.dim:
            raise EmbeddingMismatch(
                f"Collection '{self.collection}' holds {dim}-dimensional vectors, but the "
                f"configured embedding model '{self.record.model}' makes {self.record.dim}-"
                f"dimensional ones. {fix}"
            )

    async def refresh(self) -> bool:
        """Notice a collection created by another process since we opened; True if it exists."""
        if self._exists:
            return True
        if await self.store.aclient.has_collection(self.collection):
            self.store = await asyncio.to_thread(
                _construct_store, self.settings, self.embeddings, self.collection, False
            )
            await asyncio.to_thread(self._check_record)
            self._exists = True
        return self._exists

    @property
    def exists(self) -> bool:
        return self._exists

    # ----- writing -------------------------------------------------------------------

    async def add_texts(
        self, texts: list[str], metadatas: list[dict[str, Any]], ids: list[str]
    ) -> None:
        """Append chunks; the first write creates the collection with `afrom_texts`."""
        if not self._exists:
            async with self._create_lock:
                if not self._exists and not await self.refresh():
                    self.store = await KnowledgeStore.afrom_texts(  # type: ignore[assignment]
                        texts,
                        self.embeddings,
                        metadatas=metadatas,
                        ids=ids,
                        **_store_kwargs(self.settings, self.collection),
                    )
                    await self.store.aclient.alter_collection_properties(
                        self.collection,
                        properties=self.record.as_properties(),
                        timeout=self.settings.milvus_timeout,
                    )
                    self._exists = True
                    return
        await self.store.aadd_texts(
            texts, metadatas=metadatas, ids=ids, timeout=self.settings.milvus_timeout
        )

    async def delete(self, where: MilvusFilter) -> None:
        """Delete the matching chunks; raises when Milvus refuses (langchain-milvus's
        `adelete` only logs the error and returns False)."""
        if not self._exists:
            return
        deleted = await self.store.adelete(
            timeout=self.settings.milvus_timeout, **where.as_kwargs(templating=self.templating)
        )
        if deleted is False:
            raise StoreUnavailable(f"Milvus refused to delete from '{self.collection}'.")

    async def flush(self) -> None:
        """Persist and index what was written (Milvus Lite searches unflushed rows slowly)."""
        if self._exists:
            await self.store.aclient.flush(self.collection, timeout=self.settings.milvus_timeout)

    # ----- reading -------------------------------------------------------------------

    async def query(
        self, where: MilvusFilter | None, fields: list[str], limit: int = MAX_QUERY_ROWS
    ) -> list[dict[str, Any]]:
        if not await self.refresh():
            return []
        kwargs = where.as_query_kwargs(templating=self.templating) if where else {}
        return await self.store.aclient.query(
            self.collection,
            output_fields=fields,
            limit=limit,
            timeout=self.settings.milvus_timeout,
            **kwargs,
        )

    async def list_documents(self) -> list[DocumentInfo]:
        """Every document, newest first (each document's chunk 0 carries its summary)."""
        rows = await self.query(
            MilvusFilter.equals("chunk", 0),
            ["source", "chunks", "added_at", "uploaded_by", "chat_id"],
        )
        docs = [
            DocumentInfo(
                source=str(row.get("source")),
                chunks=int(row.get("chunks") or 0),
                added_at=int(row["added_at"]) if row.get("added_at") is not None else None,
                uploaded_by=row.get("uploaded_by"),
                chat_id=row.get("chat_id"),
            )
            for row in rows
        ]
        return sorted(docs, key=lambda d: (-(d.added_at or 0), d.source))

    async def remove_document(self, source: str) -> int:
        """Delete every chunk of `source` (through the async API); returns how many."""
        where = MilvusFilter.equals("source", source)
        existing = len(await self.query(where, [PRIMARY_FIELD]))
        if existing:
            await self.delete(where)
            await self.flush()
        return existing

    async def count(self) -> int:
        if not await self.refresh():
            return 0
        rows = await self.store.aclient.query(
            self.collection,
            filter="",
            output_fields=["count(*)"],
            timeout=self.settings.milvus_timeout,
        )
        return int(rows[0]["count(*)"]) if rows else 0


def _store_kwargs(settings: Settings, collection: str) -> dict[str, Any]:
    return {
        "collection_name": collection,
        "connection_args": connection_args(settings),
        "consistency_level": "Session",
        "index_params": INDEX_PARAMS,
        "search_params": SEARCH_PARAMS,
        "primary_field": PRIMARY_FIELD,
        "text_field": TEXT_FIELD,
        "vector_field": VECTOR_FIELD,
        "enable_dynamic_field": True,
        # No constructor `timeout`: langchain-milvus 0.4 then passes it twice to the first
        # insert into a new collection. Timeouts go with each call instead.
    }


def _construct_store(
    settings: Settings, embeddings: Embeddings, collection: str, drop: bool
) -> KnowledgeStore:
    """Build the store (sync: it connects and loads the collection); run in a thread."""
    if settings.uses_milvus_lite:
        # The in-process Lite server logs a traceback for each RPC it does not implement
        # (AllocTimestamp, called while an index is built); pymilvus handles it.
        logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
    try:
        return KnowledgeStore(
            embedding_function=embeddings, drop_old=drop, **_store_kwargs(settings, collection)
        )
    except ConnectionConfigException as exc:
        if settings.uses_milvus_lite:
            path = settings.milvus_lite_path.resolve()
            if _lite_dir_locked(path):
                raise StoreLocked(_locked_message(path)) from None
        raise StoreUnavailable(
            f"Cannot open the vector store at {settings.milvus_address}: {exc.message}"
        ) from None
    except MilvusException as exc:
        raise StoreUnavailable(
            f"Cannot reach Milvus at {settings.milvus_address}: {exc.message}. Is the server "
            "running, and are MILVUS_URI / MILVUS_TOKEN right?"
        ) from None


def _vector_dim(info: dict[str, Any]) -> int | None:
    for spec in info.get("fields", []):
        if spec.get("name") == VECTOR_FIELD:
            dim = spec.get("params", {}).get("dim")
            return int(dim) if dim is not None else None
    return None
