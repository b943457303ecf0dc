"""Password hashing with Argon2id (argon2-cffi), off the event loop.

Hashing is deliberately slow (tens of milliseconds of CPU), so every call runs in a
thread. Checking a name that does not exist still spends the same work on a dummy hash,
so the answer time does not tell which names exist.
"""

from __future__ import annotations

import asyncio
import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 8

_hasher = PasswordHasher()


class WeakPassword(ValueError):
    """The password is too short to accept."""


def check_strength(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_LENGTH} characters")
    return password


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, check_strength(password))


@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash("not a password anyone has")


def _verify(stored: str | None, password: str) -> bool:
    try:
        _hasher.verify(stored or _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False
    return stored is not None


async def verify_password(stored: str | None, password: str) -> bool:
    """Whether `password` matches `stored` (None: no such user; always False)."""
    return await asyncio.to_thread(_verify, stored, password)
