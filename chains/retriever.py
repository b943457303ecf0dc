"""The retriever: langchain-milvus's async similarity and MMR search, as numbered passages."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_core.documents import Document

from chains.options import SearchOptions
from core.filters import MilvusFilter

if TYPE_CHECKING:  # core.store imports pymilvus, which must not load before settings
    from core.store import KnowledgeBase


@dataclass(frozen=True)
class Passage:
    """One retrieved chunk, numbered for citation as [n]."""

    n: int
    source: str
    page: int | None
    score: float | None
    text: str
    chunk: int | None = None

    @property
    def label(self) -> str:
        return f"{self.source}, page {self.page}" if self.page is not None else self.source

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "source": self.source,
            "page": self.page,
            "score": self.score,
            "text": self.text,
        }


@dataclass(frozen=True)
class Retrieval:
    """What one retrieval did: the query it used, what it found, how long it took."""

    query: str
    passages: list[Passage]
    milliseconds: float
    search_type: str


def source_filter(sources: tuple[str, ...]) -> MilvusFilter | None:
    """Restrict a search to the given sources: values travel as parameters, never as code."""
    if not sources:
        return None
    if len(sources) == 1:
        return MilvusFilter.equals("source", sources[0])
    return MilvusFilter.one_of("source", list(sources), param="sources")


def _passage(n: int, doc: Document, score: float | None) -> Passage:
    page = doc.metadata.get("page")
    chunk = doc.metadata.get("chunk")
    return Passage(
        n=n,
        source=str(doc.metadata.get("source", "unknown")),
        page=int(page) if page is not None else None,
        score=round(float(score), 4) if score is not None else None,
        text=doc.page_content,
        chunk=int(chunk) if chunk is not None else None,
    )


class PassageRetriever:
    """Searches a knowledge base with `asimilarity_search_with_score` or
    `amax_marginal_relevance_search`, per the chat's `SearchOptions`."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb

    async def retrieve(
        self, query: str, options: SearchOptions, where: MilvusFilter | None = None
    ) -> Retrieval:
        started = time.perf_counter()
        passages = await self._search(query, options, where)
        elapsed = (time.perf_counter() - started) * 1000
        return Retrieval(query, passages, round(elapsed, 1), options.search_type)

    async def _search(
        self, query: str, options: SearchOptions, where: MilvusFilter | None
    ) -> list[Passage]:
        if not await self.kb.refresh():
            return []
        combined = source_filter(options.sources)
        if where is not None:
            combined = where if combined is None else combined & where
        kwargs: dict[str, Any] = {"timeout": self.kb.settings.milvus_timeout}
        if combined is not None:
            kwargs.update(combined.as_kwargs(templating=self.kb.templating))
        store = self.kb.store
        if options.search_type == "mmr":
            docs = await store.amax_marginal_relevance_search(
                query,
                k=options.k,
                fetch_k=options.fetch_k,
                lambda_mult=options.lambda_mult,
                **kwargs,
            )
            return [_passage(n, doc, None) for n, doc in enumerate(docs, start=1)]
        scored = await store.asimilarity_search_with_score(query, k=options.k, **kwargs)
        return [_passage(n, doc, score) for n, (doc, score) in enumerate(scored, start=1)]
