"""Opening a collection: connect, probe, create it (schema v2) or check it, and set up
langchain-milvus over it: the dense view that searches and writes, and the BM25 view that
searches the sparse field. Blocking: `open_collection` runs in a worker thread."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_milvus import BM25BuiltInFunction
from pymilvus import MilvusClient, MilvusException

from core.errors import STORE_UNREACHABLE, StoreUnavailable
from core.knowledge import Capabilities
from core.settings import Settings
from core.store.coalescing import CoalescingMilvus
from core.store.connection import connect, connection_args, probe, reason
from core.store.ledger import drop_ledger, ensure_ledger
from core.store.schema import (
    BM25_INDEX,
    BM25_SEARCH,
    PRIMARY_FIELD,
    SPARSE_FIELD,
    TEXT_FIELD,
    VECTOR_FIELD,
    Layout,
    check_layout,
    create_collection,
    dense_index,
    ensure_dense_index,
    read_layout,
)


def store_kwargs(settings: Settings, collection: str, capabilities: Capabilities) -> dict[str, Any]:
    """How langchain-milvus is set up over one of our collections: the dense vector field
    with the backend's index and search parameters, metadata in typed and dynamic fields."""
    index = dense_index(capabilities)
    return {
        "collection_name": collection,
        "connection_args": connection_args(settings),
        "consistency_level": "Session",
        "index_params": index.build,
        "search_params": index.search,
        "primary_field": PRIMARY_FIELD,
        "text_field": TEXT_FIELD,
        "vector_field": VECTOR_FIELD,
        "enable_dynamic_field": True,
        # No constructor `timeout`: langchain-milvus 0.4 then passes it twice to some
        # inserts. Timeouts go with each call instead.
    }


def keyword_store_kwargs(
    settings: Settings, collection: str, capabilities: Capabilities
) -> dict[str, Any]:
    """The BM25 view of a collection: searches the sparse field its BM25 function fills."""
    return {
        **store_kwargs(settings, collection, capabilities),
        "vector_field": SPARSE_FIELD,
        "index_params": BM25_INDEX,
        "search_params": BM25_SEARCH,
    }


@dataclass(frozen=True)
class OpenedCollection:
    client: MilvusClient
    capabilities: Capabilities
    layout: Layout
    dense: CoalescingMilvus
    keyword: CoalescingMilvus | None


def open_collection(
    settings: Settings, embeddings: Embeddings, name: str, *, model: str, dim: int, drop: bool
) -> OpenedCollection:
    """Connect, probe, optionally drop, create or check, and load the collection and
    its version ledger (`core.store.ledger`)."""
    client = connect(settings)
    timeout = settings.milvus_timeout
    with _opening(settings):
        capabilities = probe(client, timeout)
        if drop and client.has_collection(name, timeout=timeout):
            client.drop_collection(name, timeout=timeout)
        if drop:
            drop_ledger(client, name, timeout)
        if client.has_collection(name, timeout=timeout):
            layout = read_layout(client.describe_collection(name, timeout=timeout))
            check_layout(layout, name, model, dim)
            ensure_dense_index(client, name, capabilities, timeout)
        else:
            layout = create_collection(
                client, name, model=model, dim=dim, capabilities=capabilities, timeout=timeout
            )
        ensure_ledger(client, name, timeout)
        dense = CoalescingMilvus(
            embedding_function=embeddings, **store_kwargs(settings, name, capabilities)
        )
        keyword = None
        if layout.keyword_search:
            bm25 = BM25BuiltInFunction(
                input_field_names=TEXT_FIELD, output_field_names=SPARSE_FIELD
            )
            keyword = CoalescingMilvus(
                embedding_function=None,
                builtin_function=bm25,
                **keyword_store_kwargs(settings, name, capabilities),
            )
    return OpenedCollection(client, capabilities, layout, dense, keyword)


@contextlib.contextmanager
def _opening(settings: Settings) -> Iterator[None]:
    """Milvus failures while opening become one readable `StoreUnavailable`."""
    try:
        yield
    except MilvusException as exc:
        raise StoreUnavailable(
            f"Cannot open the knowledge base at {settings.milvus_address}: {reason(exc)}",
            public=STORE_UNREACHABLE,
        ) from None
