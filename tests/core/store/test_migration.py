"""Migrating a schema-v1 collection (as the first release made them) to schema v2, on
Milvus Lite and on the Milvus server: rows intact, searches unchanged, safe to re-run and
to interrupt."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings
from langchain_milvus import Milvus
from pymilvus import MilvusClient

from core.errors import SchemaOutdated
from core.knowledge import LIBRARY_OWNER, AccessScope, SearchRequest
from core.settings import Settings
from core.store import MilvusKnowledgeBase
from core.store import migration as migration_module
from core.store.connection import connection_args
from core.store.migration import backup_name, migrate_collection, staging_name
from ingest.cli import main as ingest_main
from tests.conftest import make_settings

QUERIES = ["apples and pears", "the quarterly report", "bananas", "text number 17"]

# What the first release stored: dynamic metadata, uploads with `uploaded_by`/`chat_id`.
V1_ROWS: list[tuple[str, dict[str, Any]]] = [
    (f"library text number {i} about apples and pears", {"source": f"lib{i % 5}.md"})
    for i in range(30)
] + [
    ("the quarterly report, page one", {"source": "report.pdf", "page": 1}),
    ("the quarterly report, page two", {"source": "report.pdf", "page": 2}),
    ("bananas uploaded by ada", {"source": "ada.txt", "uploaded_by": "ada", "chat_id": "c-1"}),
    (
        "bananas uploaded anonymously",
        {"source": "anon.txt", "uploaded_by": "anonymous", "chat_id": "c-2"},
    ),
    ("an html page", {"source": "page.html", "title": "Cats"}),
]


def v1_metadata(index: int, meta: dict[str, Any]) -> dict[str, Any]:
    return {"chunk": 0, "chunks": 1, "file_hash": f"hash{index}", "added_at": 1700000000, **meta}


async def make_v1_collection(settings: Settings, embeddings: Embeddings) -> None:
    """A collection exactly as the first release's `KnowledgeBase` created it."""
    name = settings.milvus_collection

    def build() -> Milvus:
        return Milvus(
            embedding_function=embeddings,
            collection_name=name,
            connection_args=connection_args(settings),
            consistency_level="Session",
            index_params={
                "index_type": "HNSW",
                "metric_type": "COSINE",
                "params": {"M": 16, "efConstruction": 200},
            },
            search_params={"metric_type": "COSINE", "params": {"ef": 128}},
            primary_field="pk",
            text_field="text",
            vector_field="vector",
            enable_dynamic_field=True,
        )

    store = await asyncio.to_thread(build)
    await store.aadd_texts(
        [text for text, _ in V1_ROWS],
        metadatas=[v1_metadata(i, meta) for i, (_, meta) in enumerate(V1_ROWS)],
        ids=[f"v1-{i:03d}" for i in range(len(V1_ROWS))],
    )
    await store.aclient.alter_collection_properties(
        name,
        properties={"rag_chat.embedding_model": "all-MiniLM-L6-v2", "rag_chat.embedding_dim": "16"},
    )
    await store.aclient.flush(name)
    await store.aclient.close()


def all_rows(settings: Settings, name: str) -> dict[str, dict[str, Any]]:
    client = MilvusClient(**connection_args(settings))
    client.load_collection(name)  # a renamed collection (the v1 backup) starts released
    rows = client.query(
        name,
        filter="",
        output_fields=["*", "vector"],
        limit=1000,
        consistency_level="Strong",
    )
    return {str(row["pk"]): row for row in rows}


async def v1_search(
    settings: Settings, embeddings: Embeddings, query: str
) -> list[tuple[str, float]]:
    """The first release's search path: langchain-milvus on the v1 collection."""
    store = await asyncio.to_thread(
        lambda: Milvus(
            embedding_function=embeddings,
            collection_name=settings.milvus_collection,
            connection_args=connection_args(settings),
            search_params={"metric_type": "COSINE", "params": {"ef": 128}},
            primary_field="pk",
            text_field="text",
            vector_field="vector",
            enable_dynamic_field=True,
        )
    )
    found = await store.asimilarity_search_with_score(query, k=6)
    return [(doc.page_content, round(score, 4)) for doc, score in found]


class MigrationSuite:
    __test__ = False

    @pytest.fixture
    def embeddings(self) -> Embeddings:
        return DeterministicFakeEmbedding(size=16)

    async def test_opening_a_v1_collection_says_how_to_migrate(
        self, v1_settings: Settings, embeddings: Embeddings
    ) -> None:
        with pytest.raises(SchemaOutdated) as info:
            await MilvusKnowledgeBase.open(v1_settings, embeddings)
        name = v1_settings.milvus_collection
        assert f"python -m ingest --migrate --collection {name}" in str(info.value)

    async def test_migration_keeps_every_row_and_every_search(
        self, v1_settings: Settings, embeddings: Embeddings
    ) -> None:
        name = v1_settings.milvus_collection
        before = all_rows(v1_settings, name)
        searches = {q: await v1_search(v1_settings, embeddings, q) for q in QUERIES}

        report = await migrate_collection(v1_settings)
        assert (report.status, report.chunks, report.backup) == (
            "migrated",
            len(V1_ROWS),
            backup_name(name),
        )
        after = all_rows(v1_settings, name)
        assert after.keys() == before.keys()
        for pk, old in before.items():
            new = after[pk]
            assert np.allclose(new["vector"], old["vector"])
            assert (new["text"], new["source"], new["file_hash"]) == (
                old["text"],
                old["source"],
                old["file_hash"],
            )
            assert new["page"] == (old.get("page") or 0)
            expected_owner = old.get("uploaded_by") if old.get("chat_id") else LIBRARY_OWNER
            assert (new["owner"], new["chat_id"]) == (expected_owner, old.get("chat_id") or "")
        assert after["v1-034"]["title"] == "Cats"
        assert "uploaded_by" not in after["v1-032"]
        assert len(all_rows(v1_settings, backup_name(name))) == len(V1_ROWS)

        kb = await MilvusKnowledgeBase.open(v1_settings, embeddings)
        try:
            for query, expected in searches.items():
                request = SearchRequest(query, AccessScope.everything(), "dense", 6, 20, 0.5)
                hits = await kb.search(request)
                assert [h.text for h in hits] == [text for text, _ in expected]
                assert [h.score for h in hits] == pytest.approx([s for _, s in expected], abs=1e-3)
            ada = AccessScope.for_user("ada")
            found = await kb.search(SearchRequest("bananas", ada, "dense", 10, 20, 0.5))
            assert "bananas uploaded anonymously" not in {h.text for h in found}
            assert "bananas uploaded by ada" in {h.text for h in found}
        finally:
            await kb.close()

        again = await migrate_collection(v1_settings)
        assert (again.status, again.chunks) == ("already-current", len(V1_ROWS))

    async def test_an_interrupted_copy_is_started_afresh(
        self, v1_settings: Settings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        name = v1_settings.milvus_collection
        monkeypatch.setattr(migration_module, "BATCH_ROWS", 10)
        real_insert = MilvusClient.insert
        calls = 0

        def failing_insert(self: MilvusClient, *args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            if calls == 2:
                raise ConnectionError("killed mid-copy")
            return real_insert(self, *args, **kwargs)

        monkeypatch.setattr(MilvusClient, "insert", failing_insert)
        with pytest.raises(ConnectionError):
            await migrate_collection(v1_settings)
        client = MilvusClient(**connection_args(v1_settings))
        assert client.has_collection(staging_name(name))
        assert len(all_rows(v1_settings, name)) == len(V1_ROWS)  # the original is untouched

        monkeypatch.setattr(MilvusClient, "insert", real_insert)
        report = await migrate_collection(v1_settings)
        assert (report.status, report.chunks) == ("migrated", len(V1_ROWS))
        assert len(all_rows(v1_settings, name)) == len(V1_ROWS)
        assert not client.has_collection(staging_name(name))

    async def test_a_crash_between_the_renames_is_completed(
        self, v1_settings: Settings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        name = v1_settings.milvus_collection
        real_rename = MilvusClient.rename_collection
        renames = 0

        def crash_on_second(self: MilvusClient, *args: Any, **kwargs: Any) -> Any:
            nonlocal renames
            renames += 1
            if renames == 2:
                raise ConnectionError("killed between the renames")
            return real_rename(self, *args, **kwargs)

        monkeypatch.setattr(MilvusClient, "rename_collection", crash_on_second)
        with pytest.raises(ConnectionError):
            await migrate_collection(v1_settings)
        client = MilvusClient(**connection_args(v1_settings))
        assert not client.has_collection(name)

        monkeypatch.setattr(MilvusClient, "rename_collection", real_rename)
        report = await migrate_collection(v1_settings)
        assert (report.status, report.chunks) == ("finished-interrupted", len(V1_ROWS))
        assert {r["owner"] for r in all_rows(v1_settings, name).values()} >= {LIBRARY_OWNER}

    def test_the_cli_migrates_and_drops_the_backup(
        self, v1_settings: Settings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        name = v1_settings.milvus_collection
        env = {"MILVUS_COLLECTION": name}
        if v1_settings.milvus_uri:
            env["MILVUS_URI"] = v1_settings.milvus_uri
        else:
            env["MILVUS_LITE_PATH"] = str(v1_settings.milvus_lite_path)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        out = io.StringIO()
        assert ingest_main(["--migrate"], out=out) == 0
        assert f"Migrated '{name}' to the current schema: {len(V1_ROWS)} chunks" in out.getvalue()
        assert "--drop-backup" in out.getvalue()
        out = io.StringIO()
        assert ingest_main(["--migrate"], out=out) == 0
        assert "already uses the current schema" in out.getvalue()
        out = io.StringIO()
        assert ingest_main(["--migrate", "--drop-backup"], out=out) == 0
        assert out.getvalue().strip() == f"Dropped '{backup_name(name)}'."
        assert not MilvusClient(**connection_args(v1_settings)).has_collection(backup_name(name))


@pytest.mark.integration
class TestMigrationOnMilvusLite(MigrationSuite):
    __test__ = True

    @pytest.fixture
    async def v1_settings(self, tmp_path: Path, embeddings: Embeddings) -> Settings:
        settings = make_settings(tmp_path, milvus_collection="old_docs")
        await make_v1_collection(settings, embeddings)
        return settings


@pytest.mark.server
class TestMigrationOnMilvusServer(MigrationSuite):
    __test__ = True

    @pytest.fixture
    async def v1_settings(
        self, milvus_server_uri: str, tmp_path: Path, embeddings: Embeddings
    ) -> AsyncIterator[Settings]:
        name = f"v1_{uuid.uuid4().hex[:12]}"
        settings = make_settings(tmp_path, milvus_uri=milvus_server_uri, milvus_collection=name)
        await make_v1_collection(settings, embeddings)
        yield settings
        client = MilvusClient(uri=milvus_server_uri)
        for leftover in client.list_collections():
            if leftover.startswith(name):
                client.drop_collection(leftover)
