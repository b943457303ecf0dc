"""A small knowledge base on real Milvus Lite with deterministic fake embeddings.

With `DeterministicFakeEmbedding`, a query equal to a passage's text embeds to the same
vector, so tests know which passage must rank first.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.embeddings import Embeddings
from langchain_core.messages import BaseMessage

from core.store import KnowledgeBase
from tests.conftest import OpenKB

PASSAGES = [
    ("alpha text about apples", {"source": "a.txt", "chunk": 0}),
    ("beta text about bananas", {"source": "b.txt", "chunk": 0}),
    ("gamma text about grapes", {"source": "c.pdf", "chunk": 0, "page": 2}),
    ("delta text about dates", {"source": 'd "quoted".md', "chunk": 0}),
]


@pytest.fixture
async def seeded_kb(open_kb: OpenKB, fake_embeddings: Embeddings) -> KnowledgeBase:
    kb = await open_kb(fake_embeddings)
    texts = [t for t, _ in PASSAGES]
    metadatas = [dict(m) for _, m in PASSAGES]
    await kb.add_texts(texts, metadatas, [f"id{i}" for i in range(len(texts))])
    return kb


class PromptRecorder(AsyncCallbackHandler):
    """Records the messages every chat model call receives."""

    def __init__(self) -> None:
        self.calls: list[list[BaseMessage]] = []

    async def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[BaseMessage]], **kwargs: Any
    ) -> None:
        self.calls.extend(messages)
