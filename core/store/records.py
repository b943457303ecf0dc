"""Between the app's records and Milvus rows: filters for an access scope or a document,
a chunk as the collection's fields, a search result as a `Hit`."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.documents import Document

from core.knowledge import AccessScope, ChunkRecord, DocumentKey, Hit, MetadataValue, Route
from core.store.filters import MilvusFilter
from core.store.schema import OWNER_FIELD, PRIMARY_FIELD, SCALAR_FIELDS, TEXT_FIELD, VECTOR_FIELD

_NOT_METADATA = {PRIMARY_FIELD, TEXT_FIELD, VECTOR_FIELD, *SCALAR_FIELDS}

NOTHING = MilvusFilter("false")  # a scope that can see nothing: no query is sent


def scope_filter(scope: AccessScope, sources: Sequence[str]) -> MilvusFilter | None:
    """The filter for a scope and an optional list of sources (values as parameters)."""
    if scope.owners is not None and not scope.owners:
        return NOTHING
    owners = (
        None
        if scope.owners is None
        else MilvusFilter.one_of(OWNER_FIELD, sorted(set(scope.owners)), param="owners")
    )
    chat = None if scope.chat_id is None else MilvusFilter.equals("chat_id", scope.chat_id)
    source = None
    if len(sources) == 1:
        source = MilvusFilter.equals("source", sources[0])
    elif sources:
        source = MilvusFilter.one_of("source", list(sources), param="sources")
    return MilvusFilter.all_of(owners, chat, source)


def document_filter(document: DocumentKey) -> MilvusFilter:
    return MilvusFilter.equals(OWNER_FIELD, document.owner) & MilvusFilter.equals(
        "source", document.source
    )


def to_row(chunk: ChunkRecord) -> dict[str, MetadataValue]:
    """A chunk's metadata as the collection's fields (absent values as sentinels)."""
    return {
        **chunk.extra,
        "source": chunk.document.source,
        OWNER_FIELD: chunk.document.owner,
        "chat_id": chunk.chat_id or "",
        "page": chunk.page or 0,
        "chunk": chunk.chunk,
        "chunks": chunk.chunks,
        "file_hash": chunk.file_hash,
        "added_at": chunk.added_at,
    }


SCORE_DIGITS = 4
"""Digits a route's score keeps: what a hit shows, and what fusion ranks on."""


def shown_score(score: float) -> float:
    """A route's score as a hit carries it (and as fusion ranks keys-only candidates, so
    that they rank as whole hits do)."""
    return round(float(score), SCORE_DIGITS)


def to_hit(doc: Document, score: float | None, ranks: dict[Route, int]) -> Hit:
    meta = doc.metadata
    return Hit(
        id=str(meta.get(PRIMARY_FIELD, "")),
        text=doc.page_content,
        source=str(meta.get("source", "")),
        owner=str(meta.get(OWNER_FIELD, "")),
        chunk=int(meta.get("chunk") or 0),
        page=int(meta.get("page") or 0) or None,
        score=shown_score(score) if score is not None else None,
        chat_id=str(meta.get("chat_id") or "") or None,
        extra={k: v for k, v in meta.items() if k not in _NOT_METADATA},
        ranks=ranks,
        file_hash=str(meta.get("file_hash") or ""),
    )
