"""One asyncio lock per key, forgotten once nobody holds or awaits it."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class KeyedLocks(Generic[K]):
    """`locks(key)` is the lock for `key`. Waiters are woken first come, first served,
    and the map holds each lock weakly, so it does not grow with every key ever seen.

    >>> locks: KeyedLocks[str] = KeyedLocks()
    >>> locks("a") is locks("a"), locks("a") is locks("b")
    (True, False)
    """

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[K, asyncio.Lock] = weakref.WeakValueDictionary()

    def __call__(self, key: K) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock
