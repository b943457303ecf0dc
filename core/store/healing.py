"""Recovering from a Milvus restart or a dropped connection without restarting the app.

A `milvus-lite server` (or a Milvus server) that restarts comes back with our collections
*released*: every search then fails with "call load() before search" until someone loads
them again. A dropped connection fails calls with UNAVAILABLE until pymilvus reconnects.
`Healer.call` runs one store call and, when it failed for one of these reasons, waits
briefly for the server, loads the collections again (one reload for every caller that
failed meanwhile) and retries the call once, all within the request's timeout. Other
failures pass through untouched.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

from pymilvus import AsyncMilvusClient, MilvusException

from core.errors import StoreUnavailable
from core.store.connection import reason

logger = logging.getLogger(__name__)

T = TypeVar("T")
Fault = Literal["released", "unreachable"]

RECONNECT_WAIT = 2.0
"""How long a failed call waits for an unreachable server before it gives up: long enough
to ride out a dropped connection, short enough that a server that is down gives a clear
error quickly instead of a silent wait."""
_POLL = 0.2
_COLLECTION_NOT_LOADED = 101
_RELEASED = ("not loaded", "call load()", "released", "collection not loaded")
_UNREACHABLE = (
    "fail connecting",
    "server unavailable",
    "connection refused",
    "failed to connect",
    "unavailable",
    "socket closed",
    "connection reset",
    "broken pipe",
    "not ready",
)


def timed_out(exc: BaseException) -> bool:
    """Whether the call ran out of time (the server may be hung or overloaded)."""
    text = reason(exc).lower()
    return isinstance(exc, TimeoutError) or any(
        word in text for word in ("deadline", "timed out", "timeout")
    )


def classify(exc: BaseException) -> Fault | None:
    """Which recoverable fault `exc` is, or None when retrying would not help.

    >>> classify(MilvusException(code=101, message="Collection 'x' is in state 'released'"))
    'released'
    >>> classify(MilvusException(code=2, message="Fail connecting to server on h:1"))
    'unreachable'
    >>> classify(MilvusException(code=1100, message="invalid filter")) is None
    True
    """
    if isinstance(exc, ConnectionError):
        return "unreachable"
    if not isinstance(exc, MilvusException):
        return None
    text = reason(exc).lower()
    if exc.code == _COLLECTION_NOT_LOADED or any(word in text for word in _RELEASED):
        return "released"
    if any(word in text for word in _UNREACHABLE):
        return "unreachable"
    return None


class Healer:
    """Retries store calls once after a restart or a dropped connection (see the module
    docstring). `collections` are the ones to load again (the chunks and the ledger)."""

    def __init__(
        self,
        client: Callable[[], AsyncMilvusClient],
        collections: tuple[str, ...],
        *,
        label: str,
        timeout: float,
    ) -> None:
        self._client = client
        self._collections = collections
        self._label = label
        self._timeout = timeout
        self._recovery: asyncio.Task[None] | None = None
        self.recoveries = 0  # how many reloads ran (for tests)

    async def call(
        self, action: str, run: Callable[[], Awaitable[T]], *, retry_unreachable: bool = True
    ) -> T:
        """`run()`, retried once after a recoverable fault, within the configured timeout.

        `retry_unreachable=False` is for writes that may have landed before the connection
        dropped (an insert retried then could store its rows twice); a released
        collection refused the call outright, so that is always retried.
        """
        deadline = time.monotonic() + self._timeout
        try:
            return await run()
        except (MilvusException, ConnectionError, TimeoutError) as exc:
            fault = classify(exc)
            if fault is None or (fault == "unreachable" and not retry_unreachable):
                raise self._failure(action, exc, fault) from exc
            first = exc
        logger.warning(
            "could not %s: %s; %s",
            action,
            reason(first),
            "the knowledge base restarted, reloading it and retrying"
            if fault == "released"
            else "reconnecting and retrying once",
        )
        try:
            await self._recover(deadline)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no time left for a retry")
            result = await asyncio.wait_for(run(), remaining)
        except (MilvusException, ConnectionError, TimeoutError) as exc:
            raise self._failure(action, exc, classify(exc) or fault) from exc
        logger.warning("%s succeeded after the knowledge base came back", action)
        return result

    async def _recover(self, deadline: float) -> None:
        """Wait (briefly) for the server and load the collections; concurrent callers
        share one recovery."""
        if self._recovery is None or self._recovery.done():
            self._recovery = asyncio.create_task(self._reload(deadline))
        await asyncio.shield(self._recovery)

    async def _reload(self, deadline: float) -> None:
        give_up = min(deadline, time.monotonic() + RECONNECT_WAIT)
        client = self._client()
        while True:
            remaining = give_up - time.monotonic()
            try:
                for name in self._collections:
                    await client.load_collection(name, timeout=max(remaining, _POLL))
                self.recoveries += 1
                return
            except MilvusException as exc:
                if classify(exc) != "unreachable" or remaining <= _POLL:
                    raise
            await asyncio.sleep(_POLL)

    def _failure(self, action: str, exc: BaseException, fault: Fault | None) -> StoreUnavailable:
        """One log line and one message saying what happened (never the address)."""
        logger.warning("could not %s on %s: %s", action, self._label, reason(exc))
        if fault == "released":
            return StoreUnavailable(
                f"Could not {action}: the knowledge base restarted and is still loading. "
                "Try again in a few seconds."
            )
        if fault == "unreachable" or timed_out(exc):
            return StoreUnavailable(
                f"Could not {action}: the knowledge base is unreachable (Milvus is down or "
                "did not answer in time). Try again in a moment."
            )
        return StoreUnavailable(
            f"Could not {action}: Milvus refused the request. The error has been logged."
        )
