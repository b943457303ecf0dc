"""Running a search: the dense and BM25 routes through langchain-milvus's async search,
their fusion (`core.fusion`), and MMR over the fused candidates (relevance: their fused
order; similarity: their dense vectors)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from langchain_core.embeddings import Embeddings

from core.fusion import diverse, fuse
from core.knowledge import Hit, Route, SearchMode, SearchRequest
from core.store.coalescing import CoalescingMilvus
from core.store.filters import MilvusFilter, query_kwargs, search_kwargs
from core.store.records import to_hit
from core.store.schema import PRIMARY_FIELD, VECTOR_FIELD

RELATIVE_DEPTH = 20
"""How many candidates each route reads for relative score fusion (the top `k` of the
fused list are returned). On both benchmark golden sets 20 found the right page first and
the answer passage as often as 30 or 50, at less cost per search; 10 found fewer
(bench/README.md)."""


@dataclass(frozen=True)
class Routes:
    """The views of one collection a search can use (`keyword` is None without BM25)."""

    dense: CoalescingMilvus
    keyword: CoalescingMilvus | None
    embeddings: Embeddings
    collection: str
    timeout: float
    templating: bool

    async def run(
        self, mode: SearchMode, request: SearchRequest, where: MilvusFilter | None
    ) -> list[Hit]:
        """The hits of `request` in `mode` (already the mode that can run here)."""
        if mode == "dense":
            return await self._route("dense", request.query, request.k, where)
        if mode == "keyword":
            return await self._route("keyword", request.query, request.k, where)
        if mode == "hybrid":
            return (await self._fused(request, request.k, where))[: request.k]
        return await self._mmr(request, where)

    async def _route(
        self, route: Route, query: str, k: int, where: MilvusFilter | None
    ) -> list[Hit]:
        store = self.dense if route == "dense" else self.keyword
        assert store is not None
        found = await store.asimilarity_search_with_score(
            query, k=k, timeout=self.timeout, **search_kwargs(where, templating=self.templating)
        )
        # BM25 scores are negative on Milvus Lite, positive on a server: keep the size.
        return [
            to_hit(doc, score if route == "dense" else abs(score), {route: rank})
            for rank, (doc, score) in enumerate(found, start=1)
        ]

    async def _fused(self, request: SearchRequest, k: int, where: MilvusFilter | None) -> list[Hit]:
        """The hybrid candidates, at least `k`: both routes fused (dense alone without
        BM25), each read `k` deep for reciprocal rank fusion and `RELATIVE_DEPTH` deep for
        relative score fusion."""
        if self.keyword is None:
            return await self._route("dense", request.query, k, where)
        depth = k if request.fusion == "rrf" else max(k, RELATIVE_DEPTH)
        dense, keyword = await asyncio.gather(
            self._route("dense", request.query, depth, where),
            self._route("keyword", request.query, depth, where),
        )
        routes: dict[Route, list[Hit]] = {"dense": dense, "keyword": keyword}
        return fuse(routes, request.fusion, request.keyword_weight)

    async def _mmr(self, request: SearchRequest, where: MilvusFilter | None) -> list[Hit]:
        candidates = (await self._fused(request, request.fetch_k, where))[: request.fetch_k]
        if not candidates:
            return []
        query_vector, rows = await asyncio.gather(
            self.embeddings.aembed_query(request.query),
            self.dense.aclient.query(
                self.collection,
                output_fields=[PRIMARY_FIELD, VECTOR_FIELD],
                timeout=self.timeout,
                **query_kwargs(
                    MilvusFilter.one_of(PRIMARY_FIELD, [h.id for h in candidates]),
                    templating=self.templating,
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
