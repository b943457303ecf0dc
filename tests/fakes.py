"""An in-memory knowledge base with the same protocol as the Milvus one, for chain and UI
tests: cosine similarity over deterministic fake embeddings, scope and source filters in
Python, MMR with LangChain's `maximal_marginal_relevance`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings

from core.fusion import diverse
from core.knowledge import (
    INGEST_VERSION_FIELD,
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

FAKE_CAPABILITIES = Capabilities(
    backend="milvus-lite",
    version="in-memory",
    filter_templates=False,
    bm25=False,
    sparse_vectors=False,
    partition_key=True,
)


@dataclass
class InMemoryKnowledgeBase:
    """Satisfies `core.knowledge.KnowledgeBase`; `searches` records every request."""

    embeddings: Embeddings = field(default_factory=lambda: DeterministicFakeEmbedding(size=16))
    name: str = "memory"
    capabilities: Capabilities = FAKE_CAPABILITIES
    keyword_search: bool = False
    chunks: dict[str, tuple[ChunkRecord, list[float]]] = field(default_factory=dict)
    searches: list[SearchRequest] = field(default_factory=list)
    pending: set[tuple[DocumentKey, str]] = field(default_factory=set)
    closed: bool = False

    async def add_chunks(self, chunks: Sequence[ChunkRecord]) -> None:
        vectors = await self.embeddings.aembed_documents([c.text for c in chunks])
        for chunk, vector in zip(chunks, vectors, strict=True):
            self.chunks[chunk.id] = (chunk, vector)

    async def search(self, request: SearchRequest) -> list[Hit]:
        """Dense routes only (this fake has no BM25): hybrid and keyword run as dense."""
        self.searches.append(request)
        candidates = [
            (chunk, vector)
            for chunk, vector in self.chunks.values()
            if self._shown(chunk, request.scope)
            and (not request.sources or chunk.document.source in request.sources)
        ]
        if not candidates:
            return []
        query = np.array(await self.embeddings.aembed_query(request.query))
        matrix = np.array([vector for _, vector in candidates])
        scores = matrix @ query / (np.linalg.norm(matrix, axis=1) * np.linalg.norm(query))
        order = [int(i) for i in np.argsort(-scores, kind="stable")]
        if effective_mode(request.mode, self.keyword_search) == "mmr":
            pool = order[: request.fetch_k]
            return diverse(
                [_hit(candidates[i][0], float(scores[i]), rank) for rank, i in enumerate(pool, 1)],
                [candidates[i][1] for i in pool],
                list(query),
                k=request.k,
                lambda_mult=request.lambda_mult,
            )
        return [
            _hit(candidates[i][0], float(scores[i]), rank)
            for rank, i in enumerate(order[: request.k], start=1)
        ]

    async def count(self, scope: AccessScope) -> int:
        return sum(1 for chunk, _ in self.chunks.values() if self._shown(chunk, scope))

    async def stored_versions(self, document: DocumentKey) -> list[StoredVersion]:
        mine = [c for c, _ in self.chunks.values() if c.document == document]
        hashes = {c.file_hash: c.chunks for c in mine}
        return [
            StoredVersion(
                h,
                declared,
                sum(1 for c in mine if c.file_hash == h),
                (document, h) not in self.pending,
            )
            for h, declared in hashes.items()
        ]

    async def delete_version(self, document: DocumentKey, file_hash: str) -> None:
        self._drop(lambda c: c.document == document and c.file_hash == file_hash)

    async def begin_version(self, document: DocumentKey, file_hash: str) -> None:
        self.pending.add((document, file_hash))
        self._drop(lambda c: c.document == document and c.file_hash == file_hash)

    async def commit_version(self, document: DocumentKey, file_hash: str, chunks: int) -> None:
        self.pending.discard((document, file_hash))
        self._drop(lambda c: c.document == document and c.file_hash != file_hash)

    async def list_documents(self, scope: AccessScope) -> list[DocumentInfo]:
        firsts = [c for c, _ in self.chunks.values() if c.chunk == 0 and self._shown(c, scope)]
        docs = [
            DocumentInfo(
                c.document.source,
                c.document.owner,
                c.chunks,
                c.added_at or None,
                c.chat_id,
                str(c.extra.get(INGEST_VERSION_FIELD) or "") or None,
            )
            for c in firsts
        ]
        return sorted(docs, key=lambda d: (-(d.added_at or 0), d.source, d.owner))

    async def remove_document(self, source: str, scope: AccessScope) -> int:
        before = len(self.chunks)
        self._drop(lambda c: c.document.source == source and _visible(c, scope))
        return before - len(self.chunks)

    async def flush(self) -> None:
        return None

    async def ping(self) -> str:
        return "ready"

    async def close(self) -> None:
        self.closed = True

    def _shown(self, chunk: ChunkRecord, scope: AccessScope) -> bool:
        return (chunk.document, chunk.file_hash) not in self.pending and _visible(chunk, scope)

    def _drop(self, doomed: Callable[[ChunkRecord], bool]) -> None:
        for chunk_id in [i for i, (c, _) in self.chunks.items() if doomed(c)]:
            del self.chunks[chunk_id]


def _visible(chunk: ChunkRecord, scope: AccessScope) -> bool:
    return scope.allows(owner=chunk.document.owner, chat_id=chunk.chat_id)


def _hit(chunk: ChunkRecord, score: float, rank: int) -> Hit:
    return Hit(
        id=chunk.id,
        text=chunk.text,
        source=chunk.document.source,
        owner=chunk.document.owner,
        chunk=chunk.chunk,
        page=chunk.page,
        score=round(score, 4),
        chat_id=chunk.chat_id,
        extra=dict(chunk.extra),
        ranks={"dense": rank},
        file_hash=chunk.file_hash,
    )
