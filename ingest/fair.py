"""A semaphore that serves its waiters round-robin across owners, then across files.

`asyncio.Semaphore` wakes waiters first come, first served: one user's 500-batch upload
queued ahead of everybody else's makes a 20-byte file wait for all of it. Here each
owner gets a turn in rotation, and each of an owner's files a turn among that owner's,
so a small upload waits for at most one batch per other active file.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class FairSlots:
    """At most `slots` holders at once; free slots go to owners in turn, and within an
    owner to its files in turn (FIFO within one file)."""

    def __init__(self, slots: int) -> None:
        self._free = slots
        # owner -> file -> waiters; both levels rotate: a served key moves to the back.
        self._waiting: OrderedDict[str, OrderedDict[str, deque[asyncio.Future[None]]]] = (
            OrderedDict()
        )

    @asynccontextmanager
    async def slot(self, owner: str, file: str) -> AsyncIterator[None]:
        await self._acquire(owner, file)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, owner: str, file: str) -> None:
        if self._free > 0 and not self._waiting:
            self._free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        files = self._waiting.setdefault(owner, OrderedDict())
        files.setdefault(file, deque()).append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # handed a slot just as it was cancelled: pass it on
            else:
                self._forget(owner, file, waiter)
            raise

    def _release(self) -> None:
        while self._waiting:
            owner, files = next(iter(self._waiting.items()))
            file, waiters = next(iter(files.items()))
            waiter = waiters.popleft()
            files.move_to_end(file)
            if not waiters:
                del files[file]
            self._waiting.move_to_end(owner)
            if not files:
                del self._waiting[owner]
            if not waiter.done():
                waiter.set_result(None)  # the slot passes straight to it
                return
        self._free += 1

    def _forget(self, owner: str, file: str, waiter: asyncio.Future[None]) -> None:
        files = self._waiting.get(owner)
        waiters = files.get(file) if files is not None else None
        if files is None or waiters is None or waiter not in waiters:
            return
        waiters.remove(waiter)
        if not waiters:
            del files[file]
        if not files:
            del self._waiting[owner]
