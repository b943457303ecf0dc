"""Embeddings whose concurrent async calls are coalesced into batched calls."""

from __future__ import annotations

from langchain_core.embeddings import Embeddings

from core.coalesce import Coalescer


class CoalescingEmbeddings(Embeddings):
    """Wraps an embedding model so that concurrent `aembed_query` calls become one
    `aembed_documents` call, and concurrent `aembed_documents` calls one bigger call.

    Only for models whose query embedding is the document embedding of the same text
    (all-MiniLM-L6-v2 as configured here, OpenAI's embeddings): then the vectors are
    those the uncoalesced calls would give. Sync calls pass straight through.
    """

    def __init__(self, inner: Embeddings, max_batch: int = 256) -> None:
        self.inner = inner
        self._queries: Coalescer[str, str, list[float]] = Coalescer(self._embed_queries, max_batch)
        self._documents: Coalescer[str, list[str], list[list[float]]] = Coalescer(
            self._embed_document_lists, max_batch
        )

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)

    async def aembed_query(self, text: str) -> list[float]:
        return await self._queries.submit("query", text)

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        return await self._documents.submit("documents", list(texts))

    async def _embed_queries(self, _: str, texts: list[str]) -> list[list[float]]:
        if len(texts) == 1:
            return [await self.inner.aembed_query(texts[0])]
        return await self.inner.aembed_documents(texts)

    async def _embed_document_lists(
        self, _: str, lists: list[list[str]]
    ) -> list[list[list[float]]]:
        vectors = await self.inner.aembed_documents([text for texts in lists for text in texts])
        out, start = [], 0
        for texts in lists:
            out.append(vectors[start : start + len(texts)])
            start += len(texts)
        return out

    @property
    def stats(self) -> dict[str, int]:
        """Batch calls made so far, per kind (for tests and benchmarks)."""
        return {"query_batches": self._queries.batches, "document_batches": self._documents.batches}
