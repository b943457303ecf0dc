"""The fault checker itself judges phases correctly (on a fake question that fails on cue)."""

from __future__ import annotations

import asyncio

import pytest

from tests.faults.checker import QuestionChecker


async def test_checker_sees_the_fault_and_the_recovery() -> None:
    broken = asyncio.Event()

    async def ask() -> str:
        if broken.is_set():
            raise ConnectionError("the store is down")
        return "an answer"

    async with QuestionChecker(ask, interval=0.01) as checker:
        await checker.wait_for_successes(3)
        fault_started = checker.mark()
        broken.set()
        await asyncio.sleep(0.05)
        fault_ended = checker.mark()
        broken.clear()
        await checker.wait_for_successes(3, since=fault_ended, within=5)

    during = checker.between(fault_started, fault_ended)
    assert during and any(isinstance(o.error, ConnectionError) for o in during)
    assert checker.recovered_within(fault_ended) < 1


async def test_checker_reports_no_recovery() -> None:
    async def ask() -> str:
        raise ConnectionError("still down")

    async with QuestionChecker(ask, interval=0.01) as checker:
        since = checker.mark()
        with pytest.raises(TimeoutError):
            await checker.wait_for_successes(1, since=since, within=0.1)
    with pytest.raises(AssertionError, match="still down"):
        checker.recovered_within(since)
