"""langchain-milvus's store with concurrent calls coalesced into batches.

Callers use the usual async API; underneath, concurrent one-query searches with the same
parameters (dense vectors, or BM25 query texts) become one multi-query `search`,
concurrent inserts one `insert`, concurrent deletes by expression one `delete`, and
concurrent reads of rows by primary key (`arows`) one `query` (see `core.coalesce`).
Inserts are also serialized: Milvus Lite requires writes to one collection to be.

A search may ask for fewer fields than langchain-milvus does (`output_fields`, say the
primary key only: `KEYS_ONLY`), and read the rows it keeps afterwards (`arows`): a fused
search reads 20 hits per route and shows 4, and on Milvus Lite each hit's fields cost
more than finding it (encoded by Lite, decoded by pymilvus on the event loop, parsed
into a Document); reading 40 passages per question made hybrid search cost twice a dense
one at 50 users (bench/README.md). With `KEYS_UNLESS_ALONE` a search alone in its batch
gets its hits whole all the same (`came_whole`): one question's fields cost less than the
query that would read its rows afterwards (on Milvus Lite a pass over the collection).
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from langchain_core.documents import Document
from langchain_milvus import Milvus

from core.coalesce import Coalescer
from core.store.filters import MAX_QUERY_ROWS, MilvusFilter, query_kwargs
from core.store.schema import PRIMARY_FIELD, SPARSE_FIELD, VECTOR_FIELD


@dataclass(frozen=True)
class _Insert:
    texts: list[str]
    embeddings: list[list[float]]
    metadatas: list[dict[str, Any]] | None
    ids: list[str] | None


KEYS_ONLY: Final = MappingProxyType({"output_fields": (PRIMARY_FIELD,)})
"""Search keyword arguments for hits without their fields (their primary keys in the
Documents' metadata, empty text): see the module's docstring."""

KEYS_UNLESS_ALONE: Final = MappingProxyType({**KEYS_ONLY, "whole_when_alone": True})
"""As `KEYS_ONLY`, but a search alone in its batch gets its hits whole (`came_whole`),
for a caller that would read the passages of some of them next."""


def came_whole(hit: Document) -> bool:
    """Whether a hit of a `KEYS_UNLESS_ALONE` search came back with its passage and
    fields (a search alone in its batch does); a key-only hit's metadata holds its key
    alone."""
    return hit.metadata.keys() != {PRIMARY_FIELD}


@dataclass(frozen=True)
class StoredChunk:
    """A row read by primary key: its passage and metadata as langchain-milvus parses a
    hit's, and its dense vector when it was asked for."""

    document: Document
    vector: list[float] | None


class CoalescingMilvus(Milvus):
    """A dense-vector view of one collection whose concurrent calls share batches.

    Its writes (inserts, deletes) and flushes take turns: Milvus Lite 3.2.2 swaps its
    write-ahead log and write buffer during a flush without excluding writes, so a write
    that overlapped a flush failed ("write to closed file", "current_seq is monotonic").
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._write_lock = asyncio.Lock()
        self._searches: Coalescer[tuple[Any, ...], list[float] | str, Any] = Coalescer(
            self._search_batch
        )
        self._inserts: Coalescer[tuple[Any, ...], _Insert, list[str]] = Coalescer(
            self._insert_batch
        )
        self._deletes: Coalescer[tuple[Any, ...], str, bool] = Coalescer(self._delete_batch)
        self._row_reads: Coalescer[tuple[Any, ...], list[str], dict[str, StoredChunk]] = Coalescer(
            self._row_batch
        )

    def _parse_document(self, data: dict[str, Any]) -> Document:
        """A hit read with `KEYS_ONLY` has no text: its Document holds its key alone."""
        data.setdefault(self._text_field, "")
        return super()._parse_document(data)

    def _remove_forbidden_fields(self, fields: list[str]) -> list[str]:
        """Never return a vector with a hit (the BM25 view would return the dense one)."""
        vectors = {SPARSE_FIELD, VECTOR_FIELD}
        return [f for f in super()._remove_forbidden_fields(fields) if f not in vectors]

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
        if isinstance(embedding_or_text, dict) or self._is_multi_vector:
            return await super()._acollection_search(
                embedding_or_text, k, param, expr, timeout, **kwargs
            )
        # A dense vector, or the text of a BM25 search: Milvus takes many of either at once.
        fields = tuple(kwargs.pop("output_fields", None) or ())
        whole_when_alone = bool(kwargs.pop("whole_when_alone", False))
        key = (k, _frozen(param), expr, timeout, _frozen(kwargs), fields, whole_when_alone)
        return await self._searches.submit(key, embedding_or_text)

    async def _search_batch(
        self, key: tuple[Any, ...], vectors: list[list[float] | str]
    ) -> list[Any]:
        k, param, expr, timeout, kwargs, fields, whole_when_alone = key
        if whole_when_alone and len(vectors) == 1:
            fields = ()  # every field, as langchain-milvus asks
        result = await self.aclient.search(
            self.collection_name,
            data=vectors,
            anns_field=self._vector_field,
            search_params=_thawed(param) or self._as_list(self.search_params)[0],
            limit=k,
            filter=expr,
            output_fields=list(fields) or self._get_output_fields(),
            timeout=self.timeout or timeout,
            **(_thawed(kwargs) or {}),
        )
        return [[hits] for hits in result]  # each caller gets a one-query result

    async def arows(
        self,
        ids: list[str],
        *,
        vectors: bool,
        templating: bool,
        timeout: float | None = None,  # noqa: ASYNC109  (Milvus's own deadline)
    ) -> dict[str, StoredChunk]:
        """The rows with primary keys `ids`, with their dense vectors if `vectors` (rows
        gone meanwhile are left out). Fifty users' searches end together and each reads
        the passages it keeps (and MMR its candidates' vectors): one query, not fifty.

        By primary key only: the keys come from a search already scoped to its user."""
        if not ids:
            return {}
        return await self._row_reads.submit((vectors, templating, timeout), list(ids))

    async def _row_batch(
        self, key: tuple[Any, ...], id_lists: list[list[str]]
    ) -> list[dict[str, StoredChunk]]:
        vectors, templating, timeout = key
        fields = [PRIMARY_FIELD, *self._get_output_fields(), *([VECTOR_FIELD] if vectors else [])]
        wanted = list(dict.fromkeys(i for ids in id_lists for i in ids))
        found: dict[str, StoredChunk] = {}
        for start in range(0, len(wanted), MAX_QUERY_ROWS):
            rows = await self.aclient.query(
                self.collection_name,
                output_fields=list(dict.fromkeys(fields)),
                timeout=timeout,
                **query_kwargs(
                    MilvusFilter.one_of(PRIMARY_FIELD, wanted[start : start + MAX_QUERY_ROWS]),
                    templating=templating,
                ),
            )
            for row in rows:
                vector = row.pop(VECTOR_FIELD, None)
                found[str(row[PRIMARY_FIELD])] = StoredChunk(self._parse_document(row), vector)
        return [{i: found[i] for i in ids if i in found} for ids in id_lists]

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

    # deletes and flushes ----------------------------------------------------------

    async def adelete(
        self, ids: list[str] | None = None, expr: str | None = None, **kwargs: Any
    ) -> bool | None:
        if ids or expr is None or "filter_params" in kwargs:
            async with self._write_lock:
                return await super().adelete(ids, expr, **kwargs)
        return await self._deletes.submit(_frozen(kwargs), expr)

    async def _delete_batch(self, key: tuple[Any, ...], exprs: list[str]) -> list[bool]:
        async with self._write_lock:
            ok = await super().adelete(expr=merge_filters(exprs), **(_thawed(key) or {}))
        return [bool(ok)] * len(exprs)

    async def aflush(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Persist the collection's written rows, between writes (see the class)."""
        async with self._write_lock:
            await self.aclient.flush(self.collection_name, timeout=timeout)


_EQUALS = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*==\s*("(?:[^"\\]|\\.)*"|-?\d+)\s*$')


def merge_filters(exprs: list[str]) -> str:
    """One filter matching what any of `exprs` matches: equality tests on one field become
    `field in [...]` (much cheaper to evaluate than a chain of `or`).

    >>> merge_filters(['pk == "a"', 'pk == "b"'])
    'pk in ["a", "b"]'
    >>> merge_filters(['pk == "a"', 'source == "b"'])
    '(pk == "a") or (source == "b")'
    """
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
