"""Garbage collection held while a command starts, resumed once it has loaded."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from core.process_gc import freeze_for_exit, hold_collection, resume_collection


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
