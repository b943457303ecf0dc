"""The chat model's time budget for one answer: bounded waits, one retry budget, and a
failure that sticks, so a hung or broken model costs seconds, not minutes.

Every call to the model for one answer (the follow-up rewrite, then the answer) streams
through the same `ModelBudget`:

- the first token must arrive within `first_token` seconds of a request (connecting
  included), and each later one within `stall` seconds of the one before;
- a failure before the first token (timeout, connection refused or dropped, rate limit,
  HTTP 5xx) is retried with a short back-off while the budget lasts; all attempts of the
  answer together get `total` seconds. A failure after the first token is not retried:
  the reader has already seen part of the answer;
- once the model has failed for this answer, later calls fail at once with the same
  reason (the chain then answers from the retrieved passages).

One line is logged per failed answer, with the reason; retries are logged at INFO.

>>> limits = ModelLimits(first_token=1, stall=1, total=2, retries=1)
>>> limits.first_token, limits.total
(1, 2)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from core.errors import ModelUnavailable
from core.providers import is_transient, model_failure
from core.settings import Settings

_SETTINGS = Settings.model_fields

logger = logging.getLogger(__name__)

OpenStream = Callable[[], AsyncIterator[str]]


@dataclass(frozen=True)
class ModelLimits:
    """Seconds to the first token, between tokens, and for all attempts of an answer;
    the defaults are `Settings`' defaults."""

    first_token: float = _SETTINGS["model_first_token_timeout"].default
    stall: float = _SETTINGS["model_stall_timeout"].default
    total: float = _SETTINGS["model_answer_budget"].default
    retries: int = _SETTINGS["openai_max_retries"].default
    backoff: float = 0.5  # seconds before the first retry; doubled for each next one

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelLimits:
        return cls(
            first_token=settings.model_first_token_timeout,
            stall=settings.model_stall_timeout,
            total=settings.model_answer_budget,
            retries=settings.openai_max_retries,
        )


class ModelBudget:
    """One answer's model time, started by its first call (see the module docstring)."""

    def __init__(self, limits: ModelLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._deadline: float | None = None
        self.failure: ModelUnavailable | None = None

    def remaining(self) -> float:
        if self._deadline is None:
            return self.limits.total
        return max(0.0, self._deadline - self._clock())

    async def text(self, open_stream: OpenStream) -> str:
        """The whole streamed text of one call (for the follow-up rewrite)."""
        return "".join([token async for token in self.stream(open_stream)])

    async def stream(self, open_stream: OpenStream) -> AsyncIterator[str]:
        """Tokens of `open_stream()`, within the limits; raises `ModelUnavailable` (with
        the reason) when the model fails for good."""
        if self.failure is not None:
            raise self.failure
        if self._deadline is None:
            self._deadline = self._clock() + self.limits.total
        attempt = 0
        while True:
            started = False
            stream = open_stream()
            try:
                while True:
                    limit = self.limits.stall if started else self.limits.first_token
                    wait = min(limit, self.remaining())
                    try:
                        async with asyncio.timeout(wait):
                            token = await anext(stream)
                    except StopAsyncIteration:
                        return
                    except TimeoutError:
                        raise self._timed_out(started, wait < limit) from None
                    started = True
                    yield token
            except Exception as exc:
                failure = (
                    exc
                    if isinstance(exc, ModelUnavailable)
                    else model_failure(exc, mid_answer=started)
                )
                if failure is None:  # not the model's failure: a bug, reported as one
                    raise
                delay = self.limits.backoff * 2**attempt
                if (
                    started
                    or not (isinstance(exc, _TimedOut) or is_transient(exc))
                    or attempt >= self.limits.retries
                    or self.remaining() <= delay
                ):
                    self.failure = failure
                    logger.warning(
                        "language model failed, answering from the passages: %s", failure
                    )
                    raise failure from None
                attempt += 1
                logger.info("the language model failed (%s); attempt %d", failure, attempt + 1)
                await asyncio.sleep(delay)
            finally:
                await _close(stream)

    def _timed_out(self, started: bool, budget_spent: bool) -> _TimedOut:
        if budget_spent:
            return _TimedOut(
                f"The language model did not answer within the {self.limits.total:g} s "
                "allowed for an answer."
            )
        if started:
            return _TimedOut(
                f"The language model stopped sending its answer for {self.limits.stall:g} s."
            )
        return _TimedOut(
            f"The language model did not start answering within {self.limits.first_token:g} s."
        )


class _TimedOut(ModelUnavailable):
    """A wait of the budget ran out (worth another attempt while time remains)."""


async def _close(stream: AsyncIterator[str]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:  # the stream already failed; its reason is known
            pass
