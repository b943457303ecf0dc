"""Store calls heal after a released collection or a dropped connection, and every
expected Milvus failure is one readable log line (no traceback, no empty message)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding

from core.errors import StoreUnavailable
from core.knowledge import AccessScope, SearchRequest
from core.logs import configure_logging
from core.store import MilvusKnowledgeBase
from core.store.connection import connection_args
from tests.conftest import FAKE_DIM, PASSAGES, make_settings
from tests.faults.conftest import LiteServer, server_settings

REQUEST = SearchRequest(
    "gamma text about grapes", AccessScope.everything(), "hybrid", k=2, fetch_k=10, lambda_mult=0.5
)


@pytest.mark.integration
async def test_a_released_collection_is_reloaded_and_the_search_retried(
    seeded_kb: MilvusKnowledgeBase, caplog: pytest.LogCaptureFixture
) -> None:
    assert await seeded_kb.ping() == "ready"
    await seeded_kb._store.aclient.release_collection(seeded_kb.name)  # as after a restart
    assert (await seeded_kb.ping()).startswith("not loaded")
    with caplog.at_level(logging.WARNING):
        hits = await seeded_kb.search(REQUEST)
    assert hits[0].source == "c.pdf"
    assert seeded_kb._healer.recoveries == 1
    assert await seeded_kb.ping() == "ready"
    ours = [r for r in caplog.records if r.name.startswith("core.")]
    assert any("restarted" in r.getMessage() for r in ours)
    assert all(r.exc_info is None for r in ours)


@pytest.mark.integration
async def test_a_store_that_is_down_is_one_clear_line(
    tmp_path: Path,
    lite_server: LiteServer,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GRPC_VERBOSITY", os.environ.get("GRPC_VERBOSITY", "NONE"))
    configure_logging()
    kb = await MilvusKnowledgeBase.open(
        server_settings(tmp_path, lite_server.uri), DeterministicFakeEmbedding(size=FAKE_DIM)
    )
    await kb.add_chunks(PASSAGES)
    lite_server.kill()
    with caplog.at_level(logging.WARNING), pytest.raises(StoreUnavailable) as info:
        await kb.search(REQUEST)
    assert "unreachable" in str(info.value) and "127.0.0.1" not in str(info.value)
    ours = [r for r in caplog.records if r.name.startswith("core.")]
    assert ours and all(r.exc_info is None and r.getMessage().strip() for r in ours)
    assert not any("MilvusException()" in r.getMessage() for r in caplog.records)
    await kb.close()


def test_library_noise_is_turned_down(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRPC_VERBOSITY", raising=False)
    levels: dict[str, Any] = {}
    for name in ("pymilvus", "milvus_lite.server_manager", "faiss.loader"):
        levels[name] = logging.getLogger(name).level
    try:
        configure_logging()
        assert os.environ["GRPC_VERBOSITY"] == "NONE"
        assert logging.getLogger("pymilvus").level == logging.CRITICAL
        assert logging.getLogger("milvus_lite.server_manager").level == logging.CRITICAL
        assert logging.getLogger("faiss.loader").level == logging.WARNING
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def test_idle_connections_to_a_server_are_not_pinged(tmp_path: Path) -> None:
    """pymilvus pings idle connections every 10 s, which Milvus Lite (in process or as a
    server) answers with GOAWAY "too_many_pings" (logged by gRPC's core, connection
    dropped)."""
    for settings in (make_settings(tmp_path, milvus_uri="http://h:1"), make_settings(tmp_path)):
        args = connection_args(settings)
        assert args["grpc_options"] == {"grpc.keepalive_permit_without_calls": 0}
