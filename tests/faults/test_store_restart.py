"""The store restarts under a steady stream of questions: success before, a clear error
while it is down, success again within 10 s after it is back, with no app restart.

Questions go through the real RAG chain (retrieval-only) every ~200 ms
(`tests.faults.checker`); the store is a `milvus-lite server` process killed with SIGKILL
and started again on the same data, which brings our collections back *released*, or
the Milvus 2.3.5 server fixture paused and resumed."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from pathlib import Path

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding

from core.errors import StoreUnavailable
from core.store import MilvusKnowledgeBase
from tests.conftest import FAKE_DIM, PASSAGES, ServerHandle
from tests.faults.checker import QuestionChecker
from tests.faults.conftest import LiteServer, ask, retrieval_chain, server_settings

DOWN_FOR = 3.0  # seconds the store stays down


@pytest.mark.integration
async def test_a_killed_and_restarted_lite_server_heals_without_an_app_restart(
    served_kb: MilvusKnowledgeBase, lite_server: LiteServer
) -> None:
    chain = retrieval_chain(served_kb)
    async with QuestionChecker(lambda: ask(chain)) as checker:
        await checker.wait_for_successes(3)
        fault_started = checker.mark()
        lite_server.kill()
        await asyncio.sleep(DOWN_FOR)
        fault_ended = checker.mark()
        lite_server.start()
        await checker.wait_for_successes(3, since=fault_ended, within=10)

    before = checker.finished_before(fault_started)
    assert before and all(o.ok and "grapes" in (o.answer or "") for o in before)
    during = checker.between(fault_started + 0.5, fault_ended)
    assert during and not any(o.ok for o in during), checker.describe(during)
    for outcome in during:  # a clear error, saying what happened, without an address
        assert isinstance(outcome.error, StoreUnavailable), checker.describe([outcome])
        assert "unreachable" in str(outcome.error)
        assert "127.0.0.1" not in str(outcome.error)
        assert outcome.seconds < 5  # fails fast instead of hanging on a dead store
    assert checker.recovered_within(fault_ended) <= 10
    after = checker.between(fault_ended)
    assert "grapes" in (after[-1].answer or "")
    assert served_kb._healer.recoveries >= 1  # reloaded the released collections


@pytest.mark.server
async def test_a_paused_and_resumed_milvus_server_heals(
    milvus_server: ServerHandle, tmp_path: Path
) -> None:
    """The session's Milvus 2.3.5 server stopped (SIGSTOP: hung, connections open) and
    started again (SIGCONT). A restart in place is not used: the embedded 2.3.5 did not
    open its proxy port again after a restart on the same data."""
    settings = server_settings(
        tmp_path, milvus_server.uri, milvus_collection=f"pause_{uuid.uuid4().hex[:8]}"
    )
    embeddings = DeterministicFakeEmbedding(size=FAKE_DIM)
    seeding = await MilvusKnowledgeBase.open(
        settings.model_copy(update={"milvus_timeout": 30.0}), embeddings
    )
    await seeding.add_chunks(PASSAGES)
    await seeding.flush()
    await seeding.close()
    # Short calls, so a hung server gives a clear error quickly.
    kb = await MilvusKnowledgeBase.open(
        settings.model_copy(update={"milvus_timeout": 2.0}), embeddings
    )
    chain = retrieval_chain(kb)
    pid = milvus_server.server.server_proc.pid
    try:
        async with QuestionChecker(lambda: ask(chain)) as checker:
            await checker.wait_for_successes(3)
            fault_started = checker.mark()
            os.kill(pid, signal.SIGSTOP)
            try:
                await asyncio.sleep(DOWN_FOR + 2)
            finally:
                fault_ended = checker.mark()
                os.kill(pid, signal.SIGCONT)
            await checker.wait_for_successes(3, since=fault_ended, within=10)
    finally:
        await kb.close()
    during = [
        o for o in checker.between(fault_started + 0.5) if o.started + o.seconds < fault_ended
    ]
    assert during and not any(o.ok for o in during), checker.describe(during)
    for outcome in during:
        assert isinstance(outcome.error, StoreUnavailable), checker.describe([outcome])
        assert "did not answer in time" in str(outcome.error)
        assert "127.0.0.1" not in str(outcome.error)
    assert checker.recovered_within(fault_ended) <= 10
