"""The store restarts under a steady stream of questions: success before, a clear error
while it is down, success again within 10 s after it is back, with no app restart.

Questions go through the real RAG chain (retrieval-only) every ~200 ms
(`tests.faults.checker`); the store is a `milvus-lite server` process killed with SIGKILL
and started again on the same data, which brings our collections back *released*."""

from __future__ import annotations

import asyncio

import pytest

from core.errors import StoreUnavailable
from core.store import MilvusKnowledgeBase
from tests.faults.checker import QuestionChecker
from tests.faults.conftest import LiteServer, ask, retrieval_chain

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

    before = checker.between(0, fault_started)
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
