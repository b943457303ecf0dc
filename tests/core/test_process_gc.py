"""Garbage collection held while a command starts, resumed once it has loaded."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from core.process_gc import freeze_for_exit, freeze_start_up, hold_collection, resume_collection


@pytest.fixture(autouse=True)
def restore_gc() -> Iterator[None]:
    yield
    gc.unfreeze()
    gc.enable()


def test_held_collection_resumes_with_what_was_loaded_frozen() -> None:
    hold_collection()
    assert not gc.isenabled()
    loaded = [object()]
    resume_collection()
    assert gc.isenabled()
    assert gc.get_freeze_count() > 0
    assert loaded  # still alive, and out of the collector's sight


def test_resuming_without_a_hold_changes_nothing() -> None:
    frozen = gc.get_freeze_count()
    resume_collection()
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen


def test_freezing_for_exit_leaves_the_collector_nothing_to_scan() -> None:
    gc.collect()
    cycle: list[object] = []
    cycle.append(cycle)
    del cycle
    freeze_for_exit()
    assert gc.collect() == 0  # the cycle was out of its sight


class Node:
    def __init__(self) -> None:
        self.me = self


def test_start_up_is_collected_then_frozen_once() -> None:
    """A running app's full collections then skip what start-up left alive (a full
    collection over it held the interpreter for 70-90 ms, an event-loop stall)."""
    gc.unfreeze()
    dropped = weakref.ref(Node())  # start-up's garbage: collected, not frozen
    kept = [object()]
    freeze_start_up()
    assert dropped() is None
    frozen = gc.get_freeze_count()
    assert frozen > 0
    later = [object()]
    freeze_start_up()  # a second start (the services reopened) changes nothing
    assert gc.get_freeze_count() == frozen
    assert kept and later


def test_start_up_is_not_frozen_while_collection_is_held() -> None:
    """A command holding collection freezes when it resumes (`resume_collection`)."""
    gc.unfreeze()
    hold_collection()
    freeze_start_up()
    assert gc.get_freeze_count() == 0 and not gc.isenabled()
