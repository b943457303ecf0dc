"""Logging for the app and the CLIs, configured once by each entry point."""

from __future__ import annotations

import logging

from core.redaction import RedactingFormatter

_QUIET = {
    # The in-process Milvus Lite server logs a traceback for each RPC it does not
    # implement (AllocTimestamp, called while an index is built); pymilvus handles it.
    "grpc._server": logging.CRITICAL,
}


def configure_logging(level: int = logging.WARNING) -> None:
    """One format for our messages, with URI passwords redacted; third-party noise
    turned down."""
    logging.basicConfig(level=level)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(RedactingFormatter("%(levelname)s %(name)s: %(message)s"))
    for name, quiet_level in _QUIET.items():
        logging.getLogger(name).setLevel(quiet_level)
