"""How long the event loop cannot run, and where it is when it cannot.

`LoopLag` runs a 5 ms ticker on the loop and keeps the worst lateness. With `sample=True`
a watchdog thread also looks at the loop's thread every millisecond: while the ticker is
more than `threshold` late, it records the loop thread's innermost frames, so a stall is
attributed to the code that held the loop (a sampling profiler of stalls only, in the
spirit of py-spy but in process and without root).
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import traceback
from collections import Counter

TICK = 0.005


class LoopLag:
    """The longest the event loop was unable to run a 5 ms ticker on time."""

    def __init__(self, sample: bool = False, threshold: float = 0.02, depth: int = 6) -> None:
        self.worst = 0.0
        self.stacks: Counter[str] = Counter()
        self._sample = sample
        self._threshold = threshold
        self._depth = depth
        self._beat = time.perf_counter()
        self._task: asyncio.Task[None] | None = None
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None

    async def _tick(self) -> None:
        while True:
            before = time.perf_counter()
            self._beat = before
            await asyncio.sleep(TICK)
            self.worst = max(self.worst, time.perf_counter() - before - TICK)

    def _watch(self, loop_thread: int) -> None:
        while not self._stop.wait(0.001):
            if time.perf_counter() - self._beat < TICK + self._threshold:
                continue
            frame = sys._current_frames().get(loop_thread)
            if frame is None:
                continue
            frames = traceback.extract_stack(frame)[-self._depth :]
            self.stacks[
                " <- ".join(
                    f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno} {f.name}" for f in frames[::-1]
                )
            ] += 1

    def __enter__(self) -> LoopLag:
        self._beat = time.perf_counter()
        self._task = asyncio.get_running_loop().create_task(self._tick())
        if self._sample:
            self._watchdog = threading.Thread(
                target=self._watch, args=(threading.get_ident(),), daemon=True
            )
            self._watchdog.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        self._stop.set()
        if self._watchdog is not None:
            self._watchdog.join()

    def report(self, top: int = 8) -> str:
        """The stacks the loop was stuck in most often (1 sample = ~1 ms of stall)."""
        total = sum(self.stacks.values()) or 1
        return "\n".join(
            f"{count:5d} ms ({count / total:4.0%})  {stack}"
            for stack, count in self.stacks.most_common(top)
        )
