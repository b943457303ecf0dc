"""Reaching Milvus: connection arguments, friendly errors on open, the capability probe.

Which backend we talk to is decided once, from the version string the server reports
(a `MILVUS_URI` may point at a `milvus-lite server` process, so the settings alone
cannot tell), and recorded in one `Capabilities` object that everything else reads.
"""

from __future__ import annotations

import fcntl
import logging
import re
from pathlib import Path
from typing import Any

from pymilvus import MilvusClient, MilvusException
from pymilvus.exceptions import ConnectionConfigException

from core.errors import STORE_UNREACHABLE, StoreLocked, StoreUnavailable
from core.knowledge import Capabilities
from core.redaction import redact_credentials
from core.settings import Settings

logger = logging.getLogger(__name__)

_LITE_VERSION = re.compile(r"^milvus[_-]lite[-_ ]?v?(\d+\.\d+(?:\.\d+)?)", re.IGNORECASE)
_SERVER_VERSION = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")


# pymilvus pings an idle connection every 10 s; a `milvus-lite server` and the in-process
# Milvus Lite (gRPC's default policy: one ping per 5 minutes without calls) answer that
# with GOAWAY "too_many_pings" and drop the connection. Ping only during calls.
_GRPC_OPTIONS = {"grpc.keepalive_permit_without_calls": 0}


def connection_args(settings: Settings) -> dict[str, Any]:
    """pymilvus connection arguments for Milvus Lite (a path) or a Milvus server."""
    if settings.milvus_uri is None:
        path = settings.milvus_lite_path.resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return {"uri": str(path), "grpc_options": dict(_GRPC_OPTIONS)}
    args: dict[str, Any] = {"uri": settings.milvus_uri, "grpc_options": dict(_GRPC_OPTIONS)}
    if settings.milvus_token is not None:
        args["token"] = settings.milvus_token.get_secret_value()
    return args


def connect(settings: Settings) -> MilvusClient:
    """A sync client (blocking: call it in a worker thread), with our messages for a
    locked Lite directory and an unreachable server."""
    try:
        return MilvusClient(**connection_args(settings), timeout=settings.milvus_timeout)
    except ConnectionConfigException as exc:
        if settings.uses_milvus_lite:
            path = settings.milvus_lite_path.resolve()
            if lite_dir_locked(path):
                raise StoreLocked(locked_message(path), public=STORE_UNREACHABLE) from None
        raise StoreUnavailable(
            f"Cannot open the vector store at {settings.milvus_address}: {reason(exc)}",
            public=STORE_UNREACHABLE,
        ) from None
    except MilvusException as exc:
        raise StoreUnavailable(
            f"Cannot reach Milvus at {settings.milvus_address}: {reason(exc)}. Is the server "
            "running, and are MILVUS_URI / MILVUS_TOKEN right?",
            public=STORE_UNREACHABLE,
        ) from None


def probe(client: MilvusClient, timeout: float) -> Capabilities:
    """Ask the server what it is (blocking)."""
    return capabilities_for(str(client.get_server_version(timeout=timeout)))


SERVER_LEDGER_LAG = 1.0  # see Capabilities.ledger_lag
# See Capabilities.flush_every: a search then walks at most this many unflushed rows
# (~7 ms), and a flush of this many takes ~50 ms in a worker thread.
LITE_FLUSH_EVERY = 256


def capabilities_for(server_version: str) -> Capabilities:
    """What a backend can do, from the version string it reports.

    Milvus Lite 3.x (`milvus_lite-3.2.2`) has BM25 and sparse vectors but no filter
    templates; a server has partition keys from 2.2.9, sparse vectors from 2.4, BM25
    functions and filter templates from 2.5. (The `milvus` pip package's 2.3.5 reports
    `v2.3.5-lite`: it is a server, not Milvus Lite 3.)

    >>> capabilities_for("milvus_lite-3.2.2").label
    'Milvus Lite 3.2.2'
    >>> c = capabilities_for("v2.3.5-lite")
    >>> c.label, c.bm25, c.filter_templates, c.partition_key
    ('Milvus 2.3.5', False, False, True)
    >>> capabilities_for("v2.5.4").bm25
    True
    """
    lite = _LITE_VERSION.match(server_version.strip())
    if lite is not None:
        return Capabilities(
            backend="milvus-lite",
            version=lite.group(1),
            filter_templates=False,
            bm25=True,
            sparse_vectors=True,
            partition_key=True,
            filtered_ann=False,
            flush_every=LITE_FLUSH_EVERY,
            short_reads=True,
        )
    match = _SERVER_VERSION.search(server_version)
    version = (
        (int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)) if match else (0, 0, 0)
    )
    return Capabilities(
        backend="milvus",
        version=".".join(map(str, version)) if match else server_version or "unknown",
        filter_templates=version >= (2, 5, 0),
        bm25=version >= (2, 5, 0),
        sparse_vectors=version >= (2, 4, 0),
        partition_key=version >= (2, 2, 9),
        ledger_lag=SERVER_LEDGER_LAG,
    )


def lite_dir_locked(path: Path) -> bool:
    """True when another process holds Milvus Lite's lock on `path`."""
    lock_file = path / "LOCK"
    if not lock_file.exists():
        return False
    with lock_file.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def locked_message(path: Path) -> str:
    return (
        f"The Milvus Lite data at {path} is in use by another process (most likely the "
        "running app). Milvus Lite allows one process per data directory. Either stop the "
        "other process, or share the data through a local server:\n"
        f"  milvus-lite server --data-dir {path} --host 127.0.0.1 --port 19541\n"
        "and set MILVUS_URI=http://127.0.0.1:19541 for both the app and the ingest."
    )


def reason(exc: BaseException) -> str:
    """What a Milvus failure says (pymilvus keeps it in `message`), never empty, with
    any password in a URI redacted."""
    return redact_credentials(str(getattr(exc, "message", None) or exc or type(exc).__name__))
