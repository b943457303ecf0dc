"""Copying a schema-v1 collection into schema v2, vectors and metadata carried over.

Nothing is re-embedded. Chunks uploaded in the chat (they carry a `chat_id`) keep their
uploader as `owner`; chunks from the ingest CLI join the shared library. The copy goes to
`NAME_v2_migrating`, is counted against the original, and is marked complete; then the
original is renamed `NAME_v1_backup` and the copy takes its name. Every step can be
interrupted and the command run again: an unfinished copy is started afresh, a finished
one is not copied twice, and a crash between the two renames is completed.

All functions here block: call them in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from pymilvus import MilvusClient

from core.errors import StoreUnavailable
from core.knowledge import LIBRARY_OWNER
from core.settings import Settings
from core.store.connection import connect, probe
from core.store.schema import (
    OWNER_FIELD,
    PRIMARY_FIELD,
    SCHEMA_VERSION,
    TEXT_FIELD,
    VECTOR_FIELD,
    create_collection,
    read_layout,
)

logger = logging.getLogger(__name__)

MIGRATED_FROM_KEY = "rag_chat.migrated_from"
BATCH_ROWS = 500
V1_ANONYMOUS = "anonymous"  # v1 recorded this uploader when nobody was signed in

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class MigrationReport:
    collection: str
    status: Literal["migrated", "already-current", "finished-interrupted"]
    chunks: int
    backup: str | None = None


def staging_name(collection: str) -> str:
    return f"{collection}_v2_migrating"


def backup_name(collection: str) -> str:
    return f"{collection}_v1_backup"


def migrate(
    client: MilvusClient,
    collection: str,
    *,
    default_model: str,
    timeout: float,
    on_progress: Progress | None = None,
) -> MigrationReport:
    """Bring `collection` to the current schema (see the module docstring)."""
    staging = staging_name(collection)
    if not client.has_collection(collection, timeout=timeout):
        if _copy_complete(client, staging, collection, timeout):
            client.rename_collection(staging, collection, timeout=timeout)
            client.load_collection(collection, timeout=timeout)  # a rename releases it
            return MigrationReport(
                collection,
                "finished-interrupted",
                _count(client, collection, timeout),
                backup=_existing(client, backup_name(collection), timeout),
            )
        raise StoreUnavailable(f"There is no collection named '{collection}' to migrate.")

    layout = read_layout(client.describe_collection(collection, timeout=timeout))
    if layout.schema_version >= SCHEMA_VERSION:
        if client.has_collection(staging, timeout=timeout):
            client.drop_collection(staging, timeout=timeout)
        return MigrationReport(collection, "already-current", _count(client, collection, timeout))
    if layout.dim is None:
        raise StoreUnavailable(f"Collection '{collection}' has no '{VECTOR_FIELD}' field.")

    total = _count(client, collection, timeout)
    if not _copy_complete(client, staging, collection, timeout):
        if client.has_collection(staging, timeout=timeout):
            client.drop_collection(staging, timeout=timeout)  # an unfinished earlier copy
        create_collection(
            client,
            staging,
            model=layout.embedding_model or default_model,
            dim=layout.dim,
            capabilities=probe(client, timeout),
            timeout=timeout,
        )
        copied = _copy_rows(client, collection, staging, total, timeout, on_progress)
        client.flush(staging, timeout=timeout)
        stored = _count(client, staging, timeout)
        if stored != total:
            raise StoreUnavailable(
                f"The copy of '{collection}' holds {stored} chunks, the original {total} "
                f"({copied} copied). Nothing was changed; run the migration again."
            )
        client.alter_collection_properties(
            staging, properties={MIGRATED_FROM_KEY: collection}, timeout=timeout
        )

    backup = _free_backup_name(client, collection, timeout)
    client.rename_collection(collection, backup, timeout=timeout)
    client.rename_collection(staging, collection, timeout=timeout)
    client.load_collection(collection, timeout=timeout)  # a rename releases it
    return MigrationReport(collection, "migrated", total, backup=backup)


def drop_backup(client: MilvusClient, collection: str, timeout: float) -> str | None:
    """Drop the v1 backup left by a migration, once `collection` is current; returns its
    name, or None when there is none."""
    if not client.has_collection(collection, timeout=timeout):
        raise StoreUnavailable(f"There is no collection named '{collection}'.")
    layout = read_layout(client.describe_collection(collection, timeout=timeout))
    if layout.schema_version < SCHEMA_VERSION:
        raise StoreUnavailable(
            f"Collection '{collection}' is not migrated yet; its backup is not dropped."
        )
    backup = _existing(client, backup_name(collection), timeout)
    if backup is not None:
        client.drop_collection(backup, timeout=timeout)
    return backup


def v2_row(row: dict[str, Any]) -> dict[str, Any]:
    """One v1 row (dynamic metadata) as a v2 row (typed fields, owner)."""
    extra = {k: v for k, v in row.items() if k not in _V1_KNOWN and v is not None}
    chat_id = str(row.get("chat_id") or "")
    owner = str(row.get("uploaded_by") or V1_ANONYMOUS) if chat_id else LIBRARY_OWNER
    return {
        **extra,
        PRIMARY_FIELD: str(row[PRIMARY_FIELD]),
        TEXT_FIELD: str(row[TEXT_FIELD]),
        VECTOR_FIELD: [float(x) for x in row[VECTOR_FIELD]],
        "source": str(row.get("source") or ""),
        OWNER_FIELD: owner,
        "chat_id": chat_id,
        "page": int(row.get("page") or 0),
        "chunk": int(row.get("chunk") or 0),
        "chunks": int(row.get("chunks") or 0),
        "file_hash": str(row.get("file_hash") or ""),
        "added_at": int(row.get("added_at") or 0),
    }


_V1_KNOWN = {
    PRIMARY_FIELD,
    TEXT_FIELD,
    VECTOR_FIELD,
    "source",
    "chat_id",
    "uploaded_by",
    "page",
    "chunk",
    "chunks",
    "file_hash",
    "added_at",
    "$meta",
}


def _copy_rows(
    client: MilvusClient,
    source: str,
    target: str,
    total: int,
    timeout: float,
    on_progress: Progress | None,
) -> int:
    copied = 0
    if on_progress is not None:
        on_progress(0, total)
    for batch in _batches(client, source, timeout):
        client.insert(target, [v2_row(row) for row in batch], timeout=timeout)
        copied += len(batch)
        if on_progress is not None:
            on_progress(copied, total)
    return copied


def _batches(
    client: MilvusClient,
    collection: str,
    timeout: float,
) -> Iterator[list[dict[str, Any]]]:
    # pymilvus warns on every iterator that Milvus Lite has no MVCC timestamp to offer.
    iterator_log = logging.getLogger("pymilvus.client.iterator.query_iterator")
    level = iterator_log.level
    iterator_log.setLevel(logging.ERROR)
    try:
        iterator = client.query_iterator(
            collection,
            batch_size=BATCH_ROWS,
            filter="",
            output_fields=["*", VECTOR_FIELD],
            timeout=timeout,
        )
    finally:
        iterator_log.setLevel(level)
    try:
        while batch := iterator.next():
            yield list(batch)
    finally:
        iterator.close()


def _copy_complete(client: MilvusClient, staging: str, collection: str, timeout: float) -> bool:
    if not client.has_collection(staging, timeout=timeout):
        return False
    properties = client.describe_collection(staging, timeout=timeout).get("properties") or {}
    return bool(properties.get(MIGRATED_FROM_KEY) == collection)


def _count(client: MilvusClient, collection: str, timeout: float) -> int:
    rows = client.query(collection, filter="", output_fields=["count(*)"], timeout=timeout)
    return int(rows[0]["count(*)"]) if rows else 0


def _existing(client: MilvusClient, name: str, timeout: float) -> str | None:
    return name if client.has_collection(name, timeout=timeout) else None


def _free_backup_name(client: MilvusClient, collection: str, timeout: float) -> str:
    name = backup_name(collection)
    if client.has_collection(name, timeout=timeout):
        name = f"{name}_{int(time.time())}"
    return name


async def migrate_collection(
    settings: Settings,
    *,
    collection: str | None = None,
    on_progress: Progress | None = None,
) -> MigrationReport:
    """Connect and migrate `collection` (default: the configured one) off the event loop."""

    def run() -> MigrationReport:
        client = connect(settings)
        try:
            return migrate(
                client,
                collection or settings.milvus_collection,
                default_model=settings.embedding_model_name,
                timeout=settings.milvus_timeout,
                on_progress=on_progress,
            )
        finally:
            client.close()

    return await asyncio.to_thread(run)


async def drop_migration_backup(settings: Settings, *, collection: str | None = None) -> str | None:
    """Drop `collection`'s v1 backup off the event loop; returns its name, if there was one."""

    def run() -> str | None:
        client = connect(settings)
        try:
            return drop_backup(
                client, collection or settings.milvus_collection, settings.milvus_timeout
            )
        finally:
            client.close()

    return await asyncio.to_thread(run)
