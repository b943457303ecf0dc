"""The store restarts under a steady stream of questions: success before, a clear error
while it is down, success again within 10 s after it is back, with no app restart.

Questions go through the real RAG chain (retrieval-only) every ~200 ms
(`tests.faults.checker`); the store is a `milvus-lite server` process killed with SIGKILL
and started again on the same data, which brings our collections back *released*, or
a Milvus 2.3.5 server killed and started again, or paused and resumed."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from core.errors import StoreUnavailable
from core.store import MilvusKnowledgeBase
from core.store.ledger import ledger_name
from tests.faults.checker import QuestionChecker
from tests.faults.conftest import (
    LiteServer,
    ask,
    retrieval_chain,
    seeded_server_kb,
    server_settings,
)
from tests.milvus_server import MilvusServerProcess

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
        await asyncio.to_thread(lite_server.start)  # until it listens; questions go on
        back = checker.mark()
        await checker.wait_for_successes(3, since=fault_ended, within=10)

    before = checker.finished_before(fault_started)
    assert before and all(o.ok and "grapes" in (o.answer or "") for o in before)
    during = checker.between(fault_started + 0.5, fault_ended)
    # Every question answered before the store was back failed; one still retrying when
    # it came back may succeed.
    assert during and not any(o.ok for o in during if o.started + o.seconds < back)
    failed = [o for o in during if not o.ok]
    assert failed, checker.describe(during)
    for outcome in failed:  # a clear error, saying what happened, without an address
        assert isinstance(outcome.error, StoreUnavailable), checker.describe([outcome])
        assert "unreachable" in str(outcome.error)
        assert "127.0.0.1" not in str(outcome.error)
        assert outcome.seconds < 5  # fails fast instead of hanging on a dead store
    assert checker.recovered_within(fault_ended) <= 10
    after = checker.between(fault_ended)
    assert "grapes" in (after[-1].answer or "")
    assert served_kb._healer.recoveries >= 1  # reloaded the released collections


@pytest.mark.server
async def test_a_killed_and_restarted_milvus_server_heals(
    milvus_server: MilvusServerProcess, tmp_path: Path
) -> None:
    """The session's Milvus 2.3.5 server SIGKILLed and started again on the same data
    and ports (a second server cannot run beside it). It serves again only once it has
    reloaded the collections (see `MilvusServerProcess.wait_until_loaded`); the app must
    be answering within 10 s of that, on its own."""
    name = f"kill_{uuid.uuid4().hex[:8]}"
    settings = server_settings(
        tmp_path, milvus_server.uri, milvus_collection=name, milvus_timeout=2.0
    )
    kb = await seeded_server_kb(settings)
    chain = retrieval_chain(kb)
    try:
        async with QuestionChecker(lambda: ask(chain)) as checker:
            await checker.wait_for_successes(3)
            fault_started = checker.mark()
            milvus_server.kill()
            await asyncio.sleep(DOWN_FOR)
            down_ended = checker.mark()
            await asyncio.to_thread(milvus_server.start)  # until it reports healthy
            collections = (name, ledger_name(name))
            await asyncio.to_thread(milvus_server.wait_until_loaded, collections)
            back = checker.mark()
            await checker.wait_for_successes(3, since=back, within=10)
    finally:
        await kb.close()
    before = checker.finished_before(fault_started)
    assert before and all(o.ok and "grapes" in (o.answer or "") for o in before)
    down = checker.between(fault_started + 0.5, down_ended)  # asked of a dead server
    assert down and not any(o.ok for o in down), checker.describe(down)
    for outcome in checker.between(fault_started + 0.5, back):
        if not outcome.ok:  # down, then starting and loading: a clear error, no address
            assert isinstance(outcome.error, StoreUnavailable), checker.describe([outcome])
            assert "127.0.0.1" not in str(outcome.error)
    assert checker.recovered_within(back) <= 10
    assert "grapes" in (checker.between(back)[-1].answer or "")


@pytest.mark.server
async def test_a_paused_and_resumed_milvus_server_heals(
    milvus_server: MilvusServerProcess, tmp_path: Path
) -> None:
    """The session's Milvus 2.3.5 server stopped (SIGSTOP: hung, connections open) and
    started again (SIGCONT)."""
    settings = server_settings(
        tmp_path, milvus_server.uri, milvus_collection=f"pause_{uuid.uuid4().hex[:8]}"
    )
    # Short calls, so a hung server gives a clear error quickly.
    kb = await seeded_server_kb(settings.model_copy(update={"milvus_timeout": 2.0}))
    chain = retrieval_chain(kb)
    try:
        async with QuestionChecker(lambda: ask(chain)) as checker:
            await checker.wait_for_successes(3)
            fault_started = checker.mark()
            milvus_server.pause()
            try:
                await asyncio.sleep(DOWN_FOR + 2)
            finally:
                fault_ended = checker.mark()
                milvus_server.resume()
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
