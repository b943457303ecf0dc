"""The process-wide resources every chat shares, built once inside Chainlit's event loop."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import Runnable

from core.settings import Settings

if TYPE_CHECKING:  # imported lazily at run time: pymilvus reads MILVUS_URI when imported
    from core.store import KnowledgeBase
    from ingest.pipeline import Ingestor


@dataclass(frozen=True)
class AppResources:
    settings: Settings
    kb: KnowledgeBase
    chain: Runnable[dict[str, Any], dict[str, Any]]
    model_name: str | None
    ingestor: Ingestor  # shared, so upload concurrency is bounded for the whole process


_lock = asyncio.Lock()
_resources: AppResources | None = None


async def get_resources(settings: Settings) -> AppResources:
    """Build (once) the embeddings, store and chain; retried after a failure.

    Must be awaited on Chainlit's loop: the Milvus async client binds to its first loop.
    """
    global _resources
    if _resources is not None:
        return _resources
    async with _lock:
        if _resources is None:
            _resources = await _build(settings)
    return _resources


async def _build(settings: Settings) -> AppResources:
    from chains.rag import build_rag_chain
    from chains.retriever import PassageRetriever
    from core.providers import build_chat_model, build_embeddings
    from core.store import KnowledgeBase
    from ingest.pipeline import IngestOptions, Ingestor

    embeddings = await asyncio.to_thread(build_embeddings, settings)  # loads a model: off-loop
    kb = await KnowledgeBase.open(settings, embeddings)
    chat_model = build_chat_model(settings)
    chain = build_rag_chain(PassageRetriever(kb), chat_model)
    return AppResources(
        settings=settings,
        kb=kb,
        chain=chain,
        model_name=settings.llm_model if chat_model is not None else None,
        ingestor=Ingestor(kb, IngestOptions.from_settings(settings)),
    )
