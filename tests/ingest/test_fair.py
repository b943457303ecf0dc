"""One user's large upload does not hold up another's small one."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from core.knowledge import ChunkRecord
from ingest.fair import FairSlots
from ingest.pipeline import IngestOptions, Ingestor
from tests.fakes import InMemoryKnowledgeBase
from tests.samples import write

BATCH_SECONDS = 0.02


class SlowStore(InMemoryKnowledgeBase):
    """Each batch takes a while to embed and write; `finished` records who was served."""

    def __init__(self) -> None:
        super().__init__()
        self.finished: list[str] = []
        self.first_written = asyncio.Event()

    async def add_chunks(self, chunks: Sequence[ChunkRecord]) -> None:
        await asyncio.sleep(BATCH_SECONDS)
        await super().add_chunks(chunks)
        self.finished.append(chunks[0].document.owner)
        self.first_written.set()


async def test_a_small_upload_overtakes_a_large_one_from_another_user(tmp_path: Path) -> None:
    kb = SlowStore()
    ingestor = Ingestor(kb, IngestOptions(chunk_size=100, chunk_overlap=0, batch_size=2))
    big = write(tmp_path / "big.txt", "\n\n".join(f"Paragraph {i} " * 6 for i in range(200)))
    small = write(tmp_path / "small.txt", "Twenty bytes of tea.")

    large = asyncio.create_task(ingestor.ingest_many([(big, "big.txt")], owner="alice"))
    await kb.first_written.wait()  # alice's batches are queued and being written
    (quick,) = await ingestor.ingest_many([(small, "small.txt")], owner="bob")
    (slow,) = await large

    assert quick.status == slow.status == "added"
    alice_batches = kb.finished.count("alice")
    assert alice_batches >= 100
    # bob waited for the few of alice's batches written while his file was read (a few
    # at most, on an idle machine), not for all of them as first-come-first-served did
    assert kb.finished.index("bob") < alice_batches // 2, kb.finished.index("bob")


async def test_slots_rotate_across_owners_then_files() -> None:
    slots = FairSlots(1)
    order: list[str] = []
    gate = asyncio.Event()

    async def hold() -> None:
        async with slots.slot("x", "x"):
            await gate.wait()

    async def take(owner: str, file: str) -> None:
        async with slots.slot(owner, file):
            order.append(f"{owner}/{file}")

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waiters = [
        asyncio.create_task(take(owner, file))
        for owner, file in [("a", "1"), ("a", "1"), ("a", "2"), ("a", "2"), ("b", "1")]
    ]
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(holder, *waiters)
    assert order == ["a/1", "b/1", "a/2", "a/1", "a/2"]


async def test_a_cancelled_waiter_gives_up_its_place() -> None:
    slots = FairSlots(1)
    gate = asyncio.Event()
    served: list[str] = []

    async def hold() -> None:
        async with slots.slot("x", "x"):
            await gate.wait()

    async def take(name: str) -> None:
        async with slots.slot(name, name):
            served.append(name)

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    gone = asyncio.create_task(take("gone"))
    stays = asyncio.create_task(take("stays"))
    await asyncio.sleep(0)
    gone.cancel()
    gate.set()
    await asyncio.gather(holder, stays)
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert served == ["stays"]
    async with slots.slot("later", "later"):  # the slot came back
        pass
