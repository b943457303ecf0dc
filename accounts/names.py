"""Valid user names.

A name is also the `owner` of the user's documents in the knowledge base, so it must
never collide with the shared library's owner (`@library`): names cannot start with `@`.

>>> check_name("ada.lovelace")
'ada.lovelace'
>>> check_name("@library")  # doctest: +ELLIPSIS
Traceback (most recent call last):
accounts.names.InvalidName: a user name is 1-64 letters, digits, ...
"""

from __future__ import annotations

import re

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class InvalidName(ValueError):
    """The name cannot be a user's."""


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidName(
            "a user name is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name
