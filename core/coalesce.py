"""Coalescing concurrent calls into batches (group commit).

Fifty users asking at once make fifty single-text embeddings and fifty one-vector
searches; on CPU-bound local embeddings and Milvus Lite each costs nearly as much as a
batch of fifty. A `Coalescer` gathers the calls that arrive in the same event-loop tick,
or while the previous batch with the same key is still running, and runs them as one
batch call. A lone call waits one loop iteration and runs alone, so it is not slower.

>>> async def double_all(key: str, items: list[int]) -> list[int]:
...     return [2 * i for i in items]
>>> async def demo() -> list[int]:
...     doubler = Coalescer(double_all)
...     return list(await asyncio.gather(*(doubler.submit("k", i) for i in range(3))))
>>> asyncio.run(demo())
[0, 2, 4]
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
Req = TypeVar("Req")
Res = TypeVar("Res")


class Coalescer(Generic[K, Req, Res]):
    """Runs `run_batch(key, requests)` for batches of concurrent `submit(key, request)`.

    At most one batch per key is in flight; requests made meanwhile form the next batch
    (up to `max_batch`). An exception fails every request of its batch, and only those.
    """

    def __init__(
        self, run_batch: Callable[[K, list[Req]], Awaitable[list[Res]]], max_batch: int = 256
    ) -> None:
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._pending: dict[K, list[tuple[Req, asyncio.Future[Res]]]] = {}
        self._draining: set[K] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0  # how many batch calls ran (for tests and benchmarks)

    async def submit(self, key: K, request: Req) -> Res:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Res] = loop.create_future()
        self._pending.setdefault(key, []).append((request, future))
        if key not in self._draining:
            self._draining.add(key)
            loop.call_soon(self._start, key)
        return await future

    def _start(self, key: K) -> None:
        task = asyncio.get_running_loop().create_task(self._drain(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self, key: K) -> None:
        try:
            while self._pending.get(key):
                queue = self._pending[key]
                batch, self._pending[key] = queue[: self._max_batch], queue[self._max_batch :]
                live = [(request, future) for request, future in batch if not future.done()]
                if not live:
                    continue
                self.batches += 1
                try:
                    results = await self._run_batch(key, [request for request, _ in live])
                except BaseException as exc:  # handed to the callers
                    for _, future in live:
                        if not future.done():
                            future.set_exception(exc)
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                    continue
                for (_, future), result in zip(live, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._draining.discard(key)
            if self._pending.get(key):  # requests arrived as this task was cancelled
                self._draining.add(key)
                asyncio.get_running_loop().call_soon(self._start, key)
            else:
                self._pending.pop(key, None)
