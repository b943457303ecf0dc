"""The ledger's snapshots: which changes between two of them a search must run again for."""

from __future__ import annotations

from core.knowledge import DocumentKey
from core.store.ledger import DocumentState, Entry, Snapshot, State

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
