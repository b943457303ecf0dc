"""A background checker for fault tests, in the spirit of Milvus's chaos tests.

It asks a question every `interval` seconds through whatever `ask` does (the real chain,
the knowledge base, the app over HTTP) while a test injects a fault, and records each
outcome with its time. The test then asserts on the three phases: success before the
fault, a clear error (or success) during it, and success again soon after it ends.

    async with QuestionChecker(ask) as checker:
        await checker.wait_for_successes(3)
        fault_started = checker.mark()
        ...inject the fault...
        fault_ended = checker.mark()
        await checker.wait_for_successes(3, since=fault_ended, within=10)
    assert checker.recovered_within(fault_ended) <= 10
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType

Ask = Callable[[], Awaitable[str]]


@dataclass(frozen=True)
class Outcome:
    started: float  # time.monotonic() when the question was sent
    seconds: float  # how long the answer (or the error) took
    answer: str | None  # the answer text, when it succeeded
    error: BaseException | None  # what was raised, when it failed

    @property
    def ok(self) -> bool:
        return self.error is None


class QuestionChecker:
    """Runs `ask` every `interval` seconds (one at a time) until the context exits."""

    def __init__(self, ask: Ask, *, interval: float = 0.2, timeout: float = 30.0) -> None:
        self._ask = ask
        self._interval = interval
        self._timeout = timeout
        self.outcomes: list[Outcome] = []
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def __aenter__(self) -> QuestionChecker:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    @staticmethod
    def mark() -> float:
        """The current time on the checker's clock (to split outcomes into phases)."""
        return time.monotonic()

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            answer: str | None = None
            error: BaseException | None = None
            try:
                # Not `asyncio.wait_for`: on Python 3.11 it can swallow the cancellation
                # that stops the checker when the question fails at the same moment, and
                # the checker then never stops.
                async with asyncio.timeout(self._timeout):
                    answer = await self._ask()
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # every failure is an outcome to judge
                error = exc
            self.outcomes.append(Outcome(started, time.monotonic() - started, answer, error))
            self._changed.set()
            await asyncio.sleep(max(0.0, self._interval - (time.monotonic() - started)))

    def between(self, start: float, end: float | None = None) -> list[Outcome]:
        """The outcomes of questions sent in [start, end)."""
        return [o for o in self.outcomes if o.started >= start and (end is None or o.started < end)]

    def finished_before(self, end: float) -> list[Outcome]:
        """The outcomes of questions answered (or failed) before `end`: the phase before a
        fault, without the question in flight when it began."""
        return [o for o in self.outcomes if o.started + o.seconds < end]

    async def wait_for_successes(
        self, count: int, *, since: float = 0.0, within: float = 30.0
    ) -> None:
        """Wait until `count` questions sent after `since` have succeeded in a row."""

        async def condition() -> None:
            while True:
                recent = self.between(since)
                tail = recent[-count:]
                if len(tail) == count and all(o.ok for o in tail):
                    return
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(condition(), within)

    async def wait_for_outcomes(
        self, count: int, *, since: float = 0.0, within: float = 30.0
    ) -> list[Outcome]:
        """Wait until `count` questions sent after `since` have an outcome; returns them."""

        async def condition() -> list[Outcome]:
            while len(recent := self.between(since)) < count:
                self._changed.clear()
                await self._changed.wait()
            return recent[:count]

        return await asyncio.wait_for(condition(), within)

    def recovered_within(self, since: float) -> float:
        """Seconds from `since` until the first question of the final run of successes was
        sent (the time to recover); raises AssertionError when the last outcome failed."""
        after = self.between(since)
        assert after and after[-1].ok, f"not recovered: {self.describe(after[-3:])}"
        first_ok = len(after)
        while first_ok > 0 and after[first_ok - 1].ok:
            first_ok -= 1
        return max(0.0, after[first_ok].started - since)

    @staticmethod
    def describe(outcomes: list[Outcome]) -> str:
        """A short readable account of outcomes, for assertion messages."""
        return (
            "; ".join("ok" if o.ok else f"{type(o.error).__name__}: {o.error}" for o in outcomes)
            or "no outcomes"
        )
