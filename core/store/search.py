"""Running a search: the dense and BM25 routes through langchain-milvus's async search,
their fusion (`core.fusion`), and MMR over the fused candidates (relevance: their fused
order; similarity: their dense vectors). A question is embedded once per search
(`QueryVector`), however many times the search runs or needs its vector.

A fused search reads its routes 20 deep each as keys and scores only (`KEYS_ONLY`), then
the passages of the candidates it keeps (`CoalescingMilvus.arows`): the `k` it returns,
or MMR's `fetch_k` with their vectors. A search alone in its batch gets its routes' hits
whole (`KEYS_UNLESS_ALONE`), and a hybrid one then reads nothing more (MMR, which reads
its candidates' vectors next, asks for keys only in any case)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from core.fusion import diverse, fuse
from core.knowledge import Candidate, Hit, Route, SearchMode, SearchRequest
from core.store.coalescing import (
    KEYS_ONLY,
    KEYS_UNLESS_ALONE,
    CoalescingMilvus,
    StoredChunk,
    came_whole,
)
from core.store.filters import MilvusFilter, search_kwargs
from core.store.records import shown_score, to_hit
from core.store.schema import PRIMARY_FIELD

RELATIVE_DEPTH = 20
"""How many candidates each route reads for relative score fusion (the top `k` of the
fused list are returned). On both benchmark golden sets 20 found the right page first and
the answer passage as often as 30 or 50, at less cost per search; 10 found fewer
(bench/README.md)."""


@dataclass
class QueryVector:
    """A question's embedding, made on first use and then reused: by a search that runs
    again after the version ledger changed under it, and by MMR, which ranks on it.

    Embedding a question is most of a search's cost under load (a batch of 50 questions
    took longer than the searches themselves), so it must not be paid twice."""

    embeddings: Embeddings
    text: str
    _vector: asyncio.Future[list[float]] | None = field(default=None, init=False, repr=False)

    async def get(self) -> list[float]:
        if self._vector is None:
            self._vector = asyncio.ensure_future(self.embeddings.aembed_query(self.text))
        # Shielded: a caller cancelled while waiting leaves the embedding to the others.
        return await asyncio.shield(self._vector)


@dataclass(frozen=True)
class Ranking:
    """Candidates best first, and the passages of those that came back whole."""

    candidates: list[Candidate]
    whole: dict[str, StoredChunk]


@dataclass(frozen=True)
class Routes:
    """The views of one collection a search can use (`keyword` is None without BM25)."""

    dense: CoalescingMilvus
    keyword: CoalescingMilvus | None
    embeddings: Embeddings
    collection: str
    timeout: float
    templating: bool

    def query_vector(self, question: str) -> QueryVector:
        """The embedding of `question`, to be made once for one search (see `run`)."""
        return QueryVector(self.embeddings, question)

    async def run(
        self,
        mode: SearchMode,
        request: SearchRequest,
        where: MilvusFilter | None,
        vector: QueryVector,
    ) -> list[Hit]:
        """The hits of `request` in `mode` (already the mode that can run here); `vector`
        is the query's embedding (`query_vector`), shared by every run of one search."""
        if mode == "dense":
            return await self._hits("dense", request.query, vector, request.k, where)
        if mode == "keyword":
            return await self._hits("keyword", request.query, vector, request.k, where)
        if mode == "hybrid":
            ranking = await self._fused(request, vector, request.k, where, KEYS_UNLESS_ALONE)
            fused = ranking.candidates[: request.k]
            unread = [c for c in fused if c.id not in ranking.whole]
            rows = ranking.whole | await self._rows(unread, vectors=False)
            return [_hit(rows[c.id], c) for c in fused if c.id in rows]
        return await self._mmr(request, vector, where)

    async def _route(
        self,
        route: Route,
        query: str,
        vector: QueryVector,
        k: int,
        where: MilvusFilter | None,
        fields: Mapping[str, Any] | None = None,
    ) -> list[tuple[Document, float]]:
        """One route's best `k` hits, through langchain-milvus's async search; `fields`:
        `KEYS_ONLY` or `KEYS_UNLESS_ALONE` to leave their passages unread."""
        kwargs = search_kwargs(where, templating=self.templating)
        if fields:
            kwargs |= fields
        if route == "dense":
            found = await self.dense.asimilarity_search_with_score_by_vector(
                await vector.get(), k=k, timeout=self.timeout, **kwargs
            )
        else:  # BM25: Milvus analyzes the text itself
            assert self.keyword is not None
            found = await self.keyword.asimilarity_search_with_score(
                query, k=k, timeout=self.timeout, **kwargs
            )
        # BM25 scores are negative on Milvus Lite, positive on a server: keep the size.
        return [(doc, score if route == "dense" else abs(score)) for doc, score in found]

    async def _hits(
        self, route: Route, query: str, vector: QueryVector, k: int, where: MilvusFilter | None
    ) -> list[Hit]:
        """One route's hits with their passages (a search in that route's mode alone)."""
        found = await self._route(route, query, vector, k, where)
        return [
            to_hit(doc, score, {route: rank}) for rank, (doc, score) in enumerate(found, start=1)
        ]

    async def _ranked(
        self,
        route: Route,
        query: str,
        vector: QueryVector,
        k: int,
        where: MilvusFilter | None,
        fields: Mapping[str, Any],
    ) -> Ranking:
        """One route's best `k` chunks as keys and scores, for fusion (scores as hits
        show them, so fusion ranks them as it ranks whole hits)."""
        found = await self._route(route, query, vector, k, where, fields)
        candidates = [
            Candidate(str(doc.metadata[PRIMARY_FIELD]), shown_score(score), {route: rank})
            for rank, (doc, score) in enumerate(found, start=1)
        ]
        whole = {
            candidate.id: StoredChunk(doc, None)
            for candidate, (doc, _) in zip(candidates, found, strict=True)
            if came_whole(doc)
        }
        return Ranking(candidates, whole)

    async def _fused(
        self,
        request: SearchRequest,
        vector: QueryVector,
        k: int,
        where: MilvusFilter | None,
        fields: Mapping[str, Any],
    ) -> Ranking:
        """The hybrid candidates, at least `k`: both routes fused (dense alone without
        BM25), each read `k` deep for reciprocal rank fusion and `RELATIVE_DEPTH` deep for
        relative score fusion."""
        if self.keyword is None:
            return await self._ranked("dense", request.query, vector, k, where, fields)
        depth = k if request.fusion == "rrf" else max(k, RELATIVE_DEPTH)
        dense, keyword = await asyncio.gather(
            self._ranked("dense", request.query, vector, depth, where, fields),
            self._ranked("keyword", request.query, vector, depth, where, fields),
        )
        routes: dict[Route, list[Candidate]] = {
            "dense": dense.candidates,
            "keyword": keyword.candidates,
        }
        fused = fuse(routes, request.fusion, request.keyword_weight)
        return Ranking(fused, dense.whole | keyword.whole)

    async def _rows(self, candidates: list[Candidate], *, vectors: bool) -> dict[str, StoredChunk]:
        """The stored rows of `candidates` (those deleted since the search are left out)."""
        return await self.dense.arows(
            [c.id for c in candidates],
            vectors=vectors,
            templating=self.templating,
            timeout=self.timeout,
        )

    async def _mmr(
        self, request: SearchRequest, vector: QueryVector, where: MilvusFilter | None
    ) -> list[Hit]:
        ranking = await self._fused(request, vector, request.fetch_k, where, KEYS_ONLY)
        fused = ranking.candidates[: request.fetch_k]
        if not fused:
            return []
        query_vector, rows = await asyncio.gather(vector.get(), self._rows(fused, vectors=True))
        hits: list[Hit] = []
        vectors: list[list[float]] = []
        for candidate in fused:
            row = rows.get(candidate.id)
            if row is not None and row.vector is not None:
                hits.append(_hit(row, candidate))
                vectors.append(row.vector)
        # Off the event loop: ranking 20 candidates' vectors is about a millisecond of
        # numpy, and 50 users' MMR searches end together (one coalesced search), so on
        # the loop they stalled it for 33-109 ms.
        return await asyncio.to_thread(
            diverse,
            hits,
            vectors,
            query_vector,
            k=request.k,
            lambda_mult=request.lambda_mult,
        )


def _hit(row: StoredChunk, candidate: Candidate) -> Hit:
    """A fused candidate with its passage, keeping its fused score as fusion made it."""
    return replace(to_hit(row.document, None, dict(candidate.ranks)), score=candidate.score)
