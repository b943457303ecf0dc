"""Logging for the app and the CLIs, configured once by each entry point.

Every failure we expect (Milvus down, a collection released, a locked Lite directory)
is logged by our code as one line with its reason; the libraries' own copies of the same
failure (pymilvus logs each failed RPC with its traceback, milvus_lite logs one before
it reports a locked directory) are turned off, as is start-up chatter (faiss announcing
its AVX build, gRPC's core logging keepalive "too_many_pings" from a lite server).
"""

from __future__ import annotations

import logging
import os

from core.redaction import RedactingFormatter

_QUIET = {
    # The in-process Milvus Lite server logs a traceback for each RPC it does not
    # implement (AllocTimestamp, called while an index is built); pymilvus handles it.
    "grpc._server": logging.CRITICAL,
    # pymilvus logs every failed call with a traceback (its own handler); the knowledge
    # base logs one line with the reason for each failure that reaches it.
    "pymilvus": logging.CRITICAL,
    # A locked data directory: logged with a traceback here, explained by our message.
    "milvus_lite.server_manager": logging.CRITICAL,
    "faiss.loader": logging.WARNING,
    # The chat-history migrations at the app's start: under Chainlit's INFO level each
    # start printed nine lines of Alembic's plugin set-up and context.
    "alembic": logging.WARNING,
}


def configure_logging(level: int = logging.WARNING) -> None:
    """One format for our messages, with URI passwords redacted; third-party noise
    turned down."""
    # gRPC's C core reads this when it loads (a user's own setting wins): it takes
    # effect for the CLIs; the app's launcher sets it before Chainlit loads gRPC.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    logging.basicConfig(level=level)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(RedactingFormatter("%(levelname)s %(name)s: %(message)s"))
    for name, quiet_level in _QUIET.items():
        logging.getLogger(name).setLevel(quiet_level)
