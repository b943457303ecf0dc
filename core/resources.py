"""Opening and closing everything the app and the CLIs share, from one `Settings`.

The app calls `open_resources` from Chainlit's start-up hook and both CLIs call it, so the
three entry points cannot drift. It must run in the event loop that will use the
resources: the Milvus async client binds to the loop of its first call.

Example::

    async with opened(settings) as resources:
        chunks = await resources.kb.count(AccessScope.everything())
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel

from core.batched_embeddings import Closable
from core.knowledge import KnowledgeBase, RerankMode
from core.onnx_cross_encoder import OnnxCrossEncoder
from core.providers import build_chat_model, build_embeddings
from core.rerank import ChatModelReranker, CrossEncoderReranker, Reranker, RerankingSearcher
from core.settings import Settings


@dataclass(frozen=True)
class Resources:
    """The embedding model, the knowledge base, the (optional) chat model and the
    rerankers that are configured."""

    settings: Settings
    embeddings: Embeddings
    kb: KnowledgeBase
    chat_model: BaseChatModel | None
    rerankers: Mapping[RerankMode, Reranker] = field(default_factory=dict)

    @property
    def searcher(self) -> RerankingSearcher:
        """The knowledge base's search, reranking when a request asks for it."""
        return RerankingSearcher(self.kb, self.rerankers)

    @property
    def model_name(self) -> str | None:
        """The chat model's name, or None in retrieval-only mode."""
        return self.settings.llm_model if self.chat_model is not None else None

    async def close(self) -> None:
        await self.kb.close()
        if isinstance(self.embeddings, Closable):
            self.embeddings.close()


async def open_resources(
    settings: Settings,
    *,
    collection: str | None = None,
    drop: bool = False,
    bulk_load: bool = False,
) -> Resources:
    """Load the embedding model (off the loop) and open the knowledge base.

    `collection` overrides the configured one; `drop` empties it first (the ingest CLI's
    `--drop`); `bulk_load` says nothing else uses the store meanwhile (the ingest CLI: see
    `MilvusKnowledgeBase.open`).
    """
    # pymilvus validates MILVUS_URI when imported: only once the settings are valid.
    from core.store import MilvusKnowledgeBase

    embeddings = await asyncio.to_thread(build_embeddings, settings)
    chat_model = build_chat_model(settings)
    rerankers: dict[RerankMode, Reranker] = {}
    if settings.reranker_model is not None:
        model = await asyncio.to_thread(OnnxCrossEncoder, settings.reranker_model)
        rerankers["cross-encoder"] = CrossEncoderReranker(model)
    if chat_model is not None:
        rerankers["llm"] = ChatModelReranker(chat_model)
    kb = await MilvusKnowledgeBase.open(
        settings, embeddings, collection=collection, drop=drop, bulk_load=bulk_load
    )
    return Resources(
        settings=settings,
        embeddings=embeddings,
        kb=kb,
        chat_model=chat_model,
        rerankers=rerankers,
    )


@contextlib.asynccontextmanager
async def opened(
    settings: Settings,
    *,
    collection: str | None = None,
    drop: bool = False,
    bulk_load: bool = False,
) -> AsyncIterator[Resources]:
    """`open_resources` as a context that closes them again."""
    resources = await open_resources(
        settings, collection=collection, drop=drop, bulk_load=bulk_load
    )
    try:
        yield resources
    finally:
        await resources.close()
