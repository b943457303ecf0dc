"""The retriever: a thin LangChain `BaseRetriever` over the knowledge base's search.

It asks a `Searcher` (the knowledge base, or a fake in tests) with the chat's options and
access scope, and numbers what it finds for citation.

Example::

    retriever = PassageRetriever(searcher=kb)
    docs = await retriever.ainvoke(
        "What is MMR?", options=SearchOptions(), scope=AccessScope.for_user("ada")
    )
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableConfig
from pydantic import ConfigDict

from chains.options import SearchOptions
from core.knowledge import (
    KEYWORD_UNAVAILABLE,
    MARKDOWN_SUFFIXES,
    AccessScope,
    Hit,
    RerankMode,
    Route,
    Searcher,
    SearchMode,
    effective_mode,
    heading_path,
    without_lead,
)
from core.rerank import RerankingSearcher


@dataclass(frozen=True)
class Passage:
    """One retrieved chunk, numbered for citation as [n]."""

    n: int
    source: str
    page: int | None
    score: float | None
    text: str
    chunk: int | None = None
    ranks: Mapping[Route, int] = field(default_factory=dict)
    section: str | None = None  # the headings above the passage, below the page title
    title: str | None = None  # the page's title, where the document has headings

    @property
    def label(self) -> str:
        """How citations name the passage: "asyncio-task.html › Timeouts", "a.pdf, page 3".

        >>> Passage(1, "asyncio-task.html", None, None, "", section="Timeouts").label
        'asyncio-task.html › Timeouts'
        """
        label = heading_path(self.source, self.section)
        return f"{label}, page {self.page}" if self.page is not None else label

    @property
    def body(self) -> str:
        """The text as a reader sees it: without the heading path that leads a structured
        document's chunks (`ingest.chunking`: it is there for the embedding and the
        model), since the label and the citation's facts already show where it is.

        >>> text = "Coroutines and Tasks › Timeouts\\n\\nUse asyncio.timeout()."
        >>> Passage(1, "a.html", None, None, text, section="Timeouts").body == text
        True
        >>> Passage(
        ...     1, "a.html", None, None, text, section="Timeouts", title="Coroutines and Tasks"
        ... ).body
        'Use asyncio.timeout().'
        """
        return without_lead(self.text, heading_path(self.title, self.section))

    @property
    def written_in_markdown(self) -> bool:
        """Whether the text is Markdown (shown formatted) rather than plain text (shown
        exactly as written).

        >>> Passage(1, "asyncio-task.html", None, None, "").written_in_markdown
        True
        >>> Passage(1, "notes.txt", None, None, "").written_in_markdown
        False
        """
        return PurePath(self.source).suffix.lower() in MARKDOWN_SUFFIXES

    @classmethod
    def from_document(cls, doc: Document) -> Passage:
        meta = doc.metadata
        return cls(
            n=int(meta["n"]),
            source=str(meta["source"]),
            page=meta.get("page"),
            score=meta.get("score"),
            text=doc.page_content,
            chunk=meta.get("chunk"),
            ranks=meta.get("ranks") or {},
            section=str(meta.get("section") or "") or None,
            title=str(meta.get("title") or "") or None,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "source": self.source,
            "page": self.page,
            "score": self.score,
            "ranks": dict(self.ranks),
            "text": self.text,
            "section": self.section,
            "title": self.title,
        }


@dataclass(frozen=True)
class Retrieval:
    """What one retrieval did: the query it used, what it found, how long it took, the
    search mode that ran, and why it differs from the one asked for."""

    query: str
    passages: list[Passage]
    milliseconds: float
    search_type: SearchMode
    notice: str | None = None
    reranked_by: RerankMode | None = None


def _document(n: int, hit: Hit) -> Document:
    return Document(
        page_content=hit.text,
        metadata={
            **hit.extra,
            "n": n,
            "source": hit.source,
            "owner": hit.owner,
            "page": hit.page,
            "chunk": hit.chunk,
            "score": hit.score,
            "chat_id": hit.chat_id,
            "ranks": dict(hit.ranks),
        },
    )


class PassageRetriever(BaseRetriever):
    """Numbered documents from `searcher` for a query, the chat's `SearchOptions` and an
    `AccessScope` (both passed to `ainvoke` as keyword arguments; the scope is required:
    no search runs without one)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    searcher: Searcher

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        options: SearchOptions | None = None,
        scope: AccessScope | None = None,
    ) -> list[Document]:
        raise NotImplementedError("the knowledge base is async: use `ainvoke`")

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,
        options: SearchOptions | None = None,
        scope: AccessScope | None = None,
    ) -> list[Document]:
        if scope is None:
            raise ValueError("a search needs an access scope")
        request = (options or SearchOptions()).request(query, scope)
        hits = await self.searcher.search(request)
        return [_document(n, hit) for n, hit in enumerate(hits, start=1)]

    async def retrieve(
        self,
        query: str,
        options: SearchOptions,
        scope: AccessScope,
        config: RunnableConfig | None = None,
    ) -> Retrieval:
        """Search and time it; the passages come back numbered from 1."""
        started = time.perf_counter()
        docs = await self.ainvoke(query, config, options=options, scope=scope)
        elapsed = (time.perf_counter() - started) * 1000
        passages = [Passage.from_document(doc) for doc in docs]
        mode = effective_mode(options.search_type, self.searcher.keyword_search)
        notices = [KEYWORD_UNAVAILABLE if mode != options.search_type else None]
        reranked_by = None
        if isinstance(self.searcher, RerankingSearcher) and options.rerank != "off":
            unavailable = self.searcher.unavailable(options.rerank)
            notices.append(unavailable)
            reranked_by = None if unavailable else options.rerank
        notice = " ".join(n for n in notices if n) or None
        return Retrieval(query, passages, round(elapsed, 1), mode, notice, reranked_by)
