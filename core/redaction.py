"""Credentials never leave in a message or a log line: `user:password@` in any URI-like
text becomes `user:***@`, even when the URI is malformed.

>>> redact_credentials("got 'http//admin:s3cret@milvus.internal:19530'")
"got 'http//admin:***@milvus.internal:19530'"
>>> redact_credentials("postgresql+asyncpg://app:p/w@db/chat and http://host:19530/x")
'postgresql+asyncpg://app:***@db/chat and http://host:19530/x'
"""

from __future__ import annotations

import logging
import re

# A user name right after `//` or at the start of a token, then `:secret@`. The secret
# runs to the last `@` before a space or quote, so a raw `/` or `@` in it is covered too.
_USERINFO = re.compile(r"(?P<lead>//|^|(?<=[\s'\"=(]))(?P<user>[^\s/@:'\"]*):(?!//)[^\s'\"]*@")


def redact_credentials(text: str) -> str:
    """`text` with the password of every `user:password@` replaced by `***`."""
    return _USERINFO.sub(r"\g<lead>\g<user>:***@", text)


class RedactingFormatter(logging.Formatter):
    """A log formatter whose output (message and traceback) holds no URI passwords."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_credentials(super().format(record))
