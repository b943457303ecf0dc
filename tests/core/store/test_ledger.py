"""The ledger's snapshots: which changes between two of them a search must run again
for, and when this process's own writes make a copy too old."""

from __future__ import annotations

import time
from typing import Any, cast

from pymilvus import AsyncMilvusClient

from core.knowledge import DocumentKey
from core.store.ledger import DocumentState, Entry, Ledger, Snapshot, State

DOC = DocumentKey("alice", "a.txt")
OTHER = DocumentKey("bob", "b.txt")


def snapshot(*versions: tuple[DocumentKey, str, State]) -> Snapshot:
    states: dict[DocumentKey, DocumentState] = {}
    for document, file_hash, state in versions:
        current = states.get(document) or DocumentState(document)
        states[document] = current.with_version(file_hash, Entry(state, 0.0))
    return Snapshot(states)


def test_a_replaced_or_removed_version_that_was_shown_counts() -> None:
    shown = snapshot((DOC, "v2", "pending"))  # v1 shown, v2 being written
    assert snapshot((DOC, "v1", "superseded")).hides_what_was_shown(shown)
    assert snapshot((DOC, "v1", "gone")).hides_what_was_shown(snapshot())


def test_new_registrations_commits_and_clean_ups_do_not() -> None:
    empty = snapshot()
    registered = snapshot((OTHER, "v1", "pending"))
    assert not registered.hides_what_was_shown(empty)  # a new upload starts
    assert not empty.hides_what_was_shown(registered)  # ... and is committed
    replaced = snapshot((DOC, "v1", "superseded"))
    assert not snapshot((DOC, "v1", "gone")).hides_what_was_shown(replaced)  # chunks deleted
    assert not empty.hides_what_was_shown(replaced)  # the entry expired
    assert not replaced.hides_what_was_shown(replaced)


class EmptyLedgerClient:
    """Answers every ledger read with no rows, and counts them."""

    def __init__(self) -> None:
        self.queries = 0

    async def query(self, collection: str, **kwargs: Any) -> list[dict[str, Any]]:
        self.queries += 1
        return []


async def test_a_copy_read_before_an_own_commit_is_not_handed_out_again() -> None:
    client = EmptyLedgerClient()
    ledger = Ledger(lambda: cast(AsyncMilvusClient, client), "kb", timeout=5, lag=1.0)
    first = await ledger.covering_now()
    assert await ledger.covering_now() is first and client.queries == 1  # recent enough
    ledger.outdate_copies_before(time.monotonic() - 5)  # a write before that copy
    assert await ledger.covering_now() is first and client.queries == 1
    committed_at = time.monotonic()
    ledger.outdate_copies_before(committed_at)
    second = await ledger.covering_now()
    assert client.queries == 2 and second.read_at >= committed_at
    assert await ledger.covering_now() is second  # ... and that one is reused
    await ledger.close()
