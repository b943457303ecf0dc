"""Embeddings whose concurrent async calls are coalesced into batched calls, with the
questions of people waiting in the chat served before bulk document embedding."""

from __future__ import annotations

import asyncio
from typing import Protocol, runtime_checkable

from langchain_core.embeddings import Embeddings

from core.coalesce import Coalescer

DOCUMENT_SLICE = 16


@runtime_checkable
class QueryBatches(Protocol):
    """A model that embeds a batch of questions apart from documents (at the questions'
    priority; see `core.onnx_embeddings`)."""

    async def aembed_queries(self, texts: list[str]) -> list[list[float]]: ...


@runtime_checkable
class Closable(Protocol):
    def close(self) -> None: ...


class CoalescingEmbeddings(Embeddings):
    """Wraps an embedding model so that concurrent `aembed_query` calls become one
    `aembed_documents` call, and concurrent `aembed_documents` calls one bigger call.

    Only for models whose query embedding is the document embedding of the same text
    (all-MiniLM-L6-v2 as configured here, OpenAI's embeddings): then the vectors are
    those the uncoalesced calls would give. Sync calls pass straight through.

    Questions come first: documents (an ingest) are embedded in slices of
    `document_slice` texts, and a slice starts only when no question is being embedded,
    so a chat never waits behind more than one slice of an ingest.
    """

    def __init__(
        self, inner: Embeddings, max_batch: int = 256, document_slice: int = DOCUMENT_SLICE
    ) -> None:
        self.inner = inner
        self.document_slice = document_slice
        self._queries: Coalescer[str, str, list[float]] = Coalescer(self._embed_queries, max_batch)
        self._documents: Coalescer[str, list[str], list[list[float]]] = Coalescer(
            self._embed_document_lists, max_batch
        )
        self._questions_in_flight = 0
        self._no_questions = asyncio.Event()  # set while no question is being embedded
        self._no_questions.set()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)

    async def aembed_query(self, text: str) -> list[float]:
        self._questions_in_flight += 1
        self._no_questions.clear()
        try:
            return await self._queries.submit("query", text)
        finally:
            self._questions_in_flight -= 1
            if self._questions_in_flight == 0:
                self._no_questions.set()

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        return await self._documents.submit("documents", list(texts))

    async def _embed_queries(self, _: str, texts: list[str]) -> list[list[float]]:
        if len(texts) == 1:
            return [await self.inner.aembed_query(texts[0])]
        if isinstance(self.inner, QueryBatches):
            return await self.inner.aembed_queries(texts)
        return await self.inner.aembed_documents(texts)

    async def _embed_document_lists(
        self, _: str, lists: list[list[str]]
    ) -> list[list[list[float]]]:
        texts = [text for group in lists for text in group]
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.document_slice):
            await self._no_questions.wait()
            vectors += await self.inner.aembed_documents(texts[start : start + self.document_slice])
        out, start = [], 0
        for group in lists:
            out.append(vectors[start : start + len(group)])
            start += len(group)
        return out

    def close(self) -> None:
        """Release the inner model's threads, if it holds any."""
        if isinstance(self.inner, Closable):
            self.inner.close()

    @property
    def stats(self) -> dict[str, int]:
        """Batch calls made so far, per kind (for tests and benchmarks)."""
        return {"query_batches": self._queries.batches, "document_batches": self._documents.batches}
