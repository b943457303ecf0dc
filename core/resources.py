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
from collections.abc import AsyncIterator
from dataclasses import dataclass

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel

from core.knowledge import KnowledgeBase
from core.providers import build_chat_model, build_embeddings
from core.settings import Settings


@dataclass(frozen=True)
class Resources:
    """The embedding model, the knowledge base and the (optional) chat model."""

    settings: Settings
    embeddings: Embeddings
    kb: KnowledgeBase
    chat_model: BaseChatModel | None

    @property
    def model_name(self) -> str | None:
        """The chat model's name, or None in retrieval-only mode."""
        return self.settings.llm_model if self.chat_model is not None else None

    async def close(self) -> None:
        await self.kb.close()


async def open_resources(
    settings: Settings, *, collection: str | None = None, drop: bool = False
) -> Resources:
    """Load the embedding model (off the loop) and open the knowledge base.

    `collection` overrides the configured one; `drop` empties it first (the ingest CLI's
    `--drop`).
    """
    # pymilvus validates MILVUS_URI when imported: only once the settings are valid.
    from core.store import MilvusKnowledgeBase

    embeddings = await asyncio.to_thread(build_embeddings, settings)
    kb = await MilvusKnowledgeBase.open(settings, embeddings, collection=collection, drop=drop)
    return Resources(
        settings=settings, embeddings=embeddings, kb=kb, chat_model=build_chat_model(settings)
    )


@contextlib.asynccontextmanager
async def opened(
    settings: Settings, *, collection: str | None = None, drop: bool = False
) -> AsyncIterator[Resources]:
    """`open_resources` as a context that closes them again."""
    resources = await open_resources(settings, collection=collection, drop=drop)
    try:
        yield resources
    finally:
        await resources.close()
