"""Bounds on what uploads may hold in memory and on disk before they are ingested.

Chainlit 2.12 reads the whole body of `POST /project/file` into memory before it checks
the size, stores every upload under `.files/<session>` until the session ends, and on
shutdown deletes all of `.files` (another instance's uploads in the same folder too).
Here:

- `UploadBodyLimit` refuses an upload with 413 as soon as its body passes the limit
  (at once when `Content-Length` says so), never reading past it;
- `install_upload_storage` caps the bytes one chat and one user may hold uploaded but
  not yet ingested, gives this process its own files directory (so its shutdown removes
  only its own), and lets empty uploads through so the chat can say "the file is empty".
  The cap counts and refuses only files stored by the upload route: Chainlit stores the
  passages the app shows (citations) through the same `persist_file`, and those must
  neither count nor be refused;
- `discard_uploads` deletes a message's files once they are ingested.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.processes import process_exists
from ingest.limits import MIB

logger = logging.getLogger(__name__)

# Room for the multipart framing around the file (boundaries, part headers, file name).
MULTIPART_OVERHEAD = 64 * 1024
_UPLOAD_PATH = "/project/file"
INSTANCE_PREFIX = "instance-"
# Set while an upload request is handled: files stored then are uploads.
_IN_UPLOAD_REQUEST: ContextVar[bool] = ContextVar("in_upload_request", default=False)
_UPLOAD_MARK = "uploaded"


@contextmanager
def upload_request() -> Iterator[None]:
    """Files `persist_file` stores inside this block are uploads (quota-checked)."""
    token = _IN_UPLOAD_REQUEST.set(True)
    try:
        yield
    finally:
        _IN_UPLOAD_REQUEST.reset(token)


class BodyTooLarge(Exception):
    """Raised into the app when the request body passes the limit."""


def upload_limit_bytes() -> int | None:
    """The largest upload body Chainlit's configuration allows (MAX_FILE_MB, set at
    start-up by `ui.runtime.configure_uploads`), with room for the multipart framing."""
    from chainlit.config import config

    upload = config.features.spontaneous_file_upload
    if upload is None or upload.max_size_mb is None:
        return None
    return int(upload.max_size_mb * MIB) + MULTIPART_OVERHEAD


class UploadBodyLimit:
    """ASGI middleware: `POST /project/file` bodies over the limit get 413, early; the
    request is handled inside `upload_request()`, so the quota applies to what it stores."""

    def __init__(self, app: ASGIApp, limit: Callable[[], int | None] = upload_limit_bytes):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _is_upload(scope):
            await self.app(scope, receive, send)
            return
        with upload_request():
            await self._bounded(scope, receive, send)

    async def _bounded(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limit()
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _refuse(send, limit)  # without reading a byte of the body
            return
        received = 0
        exceeded = False

        async def bounded_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            if not exceeded:  # once over the limit, the answer is ours
                await send(message)

        try:
            await self.app(scope, bounded_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded:
            await _refuse(send, limit)


def _is_upload(scope: Scope) -> bool:
    return (
        scope["type"] == "http"
        and scope["method"] == "POST"
        and str(scope["path"]).rstrip("/").endswith(_UPLOAD_PATH)
    )


async def _refuse(send: Send, limit: int) -> None:
    megabytes = (limit - MULTIPART_OVERHEAD) / MIB
    body = json.dumps(
        {"detail": f"The file is too large: uploads are limited to {megabytes:.0f} MB."}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class UploadQuota:
    """Bytes uploaded but not yet ingested: at most `per_session` in one chat and
    `per_user` across one user's chats."""

    def __init__(self, per_session: int, per_user: int) -> None:
        self.per_session = per_session
        self.per_user = per_user

    def check(self, session: Any, adding: int) -> None:
        """Raise a 413 `HTTPException` when storing `adding` more bytes for `session`
        would pass a cap."""
        from chainlit.session import ws_sessions_id
        from fastapi import HTTPException

        held = _stored_bytes(session)
        if held + adding > self.per_session:
            raise HTTPException(
                status_code=413,
                detail=f"This chat already holds {held / MIB:.1f} MB of files waiting to be "
                f"sent; the limit is {self.per_session / MIB:.0f} MB. Send or remove some first.",
            )
        user = _identifier(session)
        if user is None:
            return
        held = sum(
            _stored_bytes(other) for other in ws_sessions_id.values() if _identifier(other) == user
        )
        if held + adding > self.per_user:
            raise HTTPException(
                status_code=413,
                detail=f"Your chats already hold {held / MIB:.1f} MB of files waiting to be "
                f"sent; the limit is {self.per_user / MIB:.0f} MB per user.",
            )


def _stored_bytes(session: Any) -> int:
    """Bytes of the session's uploads (not of the passages Chainlit stored for display)."""
    return sum(
        int(entry.get("size") or 0)
        for entry in getattr(session, "files", {}).values()
        if entry.get(_UPLOAD_MARK)
    )


def _identifier(session: Any) -> str | None:
    user = getattr(session, "user", None)
    return getattr(user, "identifier", None)


def install_upload_storage(quota: UploadQuota, files_root: Path | None = None) -> Path:
    """Guard Chainlit's `persist_file` with `quota` for uploads (and let empty uploads
    through), and move this process's uploads into a directory of its own under `files_root` (by
    default Chainlit's `.files`); returns that directory. Call before the first session."""
    import chainlit.config
    import chainlit.server
    from chainlit.session import BaseSession

    root = files_root or chainlit.config.FILES_DIRECTORY
    current = Path(chainlit.config.FILES_DIRECTORY)
    instance = current if current.parent == root and _owner_pid(current) == os.getpid() else None
    if instance is None:
        _remove_abandoned(root)
        instance = root / f"{INSTANCE_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    instance.mkdir(parents=True, exist_ok=True)
    # Sessions look it up at each use; the server's shutdown removes what it names.
    chainlit.config.FILES_DIRECTORY = instance
    chainlit.server.FILES_DIRECTORY = instance  # type: ignore[attr-defined]

    original = getattr(BaseSession.persist_file, "original", BaseSession.persist_file)

    async def persist_file(
        self: BaseSession,
        name: str,
        mime: str,
        path: str | None = None,
        content: bytes | str | None = None,
    ) -> Any:
        if not _IN_UPLOAD_REQUEST.get():
            return await original(self, name, mime, path, content)
        size = (
            len(content)
            if content
            else (await asyncio.to_thread(os.path.getsize, path) if path else 0)
        )
        quota.check(self, size)
        if path or content:
            stored = await original(self, name, mime, path, content)
            _mark_upload(self, stored["id"])
            return stored
        # Chainlit refuses empty content (an opaque HTTP 500); store an empty file, so the
        # ingest pipeline can say "the file is empty".
        self.files_dir.mkdir(parents=True, exist_ok=True)
        file_id = str(uuid.uuid4())
        file_path = self.files_dir / file_id
        file_path.touch()
        self.files[file_id] = {
            "id": file_id,
            "path": file_path,
            "name": name,
            "type": mime,
            "size": 0,
        }
        _mark_upload(self, file_id)
        return {"id": file_id}

    persist_file.original = original  # type: ignore[attr-defined]
    BaseSession.persist_file = persist_file  # type: ignore[method-assign]
    return instance


def _mark_upload(session: Any, file_id: str) -> None:
    entry: dict[str, Any] = session.files[file_id]
    entry[_UPLOAD_MARK] = True


def _owner_pid(directory: Path) -> int | None:
    """The process an instance directory belongs to (None: not an instance directory)."""
    if not directory.name.startswith(INSTANCE_PREFIX):
        return None
    head = directory.name.removeprefix(INSTANCE_PREFIX).split("-", 1)[0]
    return int(head) if head.isdigit() else None


def _remove_abandoned(root: Path) -> None:
    """Remove instance directories whose process is gone (it crashed, or was killed)."""
    if not root.is_dir():
        return
    for directory in root.iterdir():
        pid = _owner_pid(directory)
        if pid is None or not directory.is_dir() or process_exists(pid):
            continue
        shutil.rmtree(directory, ignore_errors=True)


def discard_uploads(session: Any, elements: Iterable[Any]) -> None:
    """Delete ingested uploads from the session's files and from disk (the knowledge
    base has their text now); their bytes no longer count against the quota."""
    files: dict[str, Any] = getattr(session, "files", {})
    for element in elements:
        key = getattr(element, "chainlit_key", None) or getattr(element, "id", None)
        entry = files.pop(str(key), None) if key is not None else None
        path = Path(str(entry["path"] if entry else getattr(element, "path", "") or ""))
        if entry is None and path.parent != getattr(session, "files_dir", None):
            continue  # never delete a file that is not one of this session's uploads
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            logger.warning("could not delete an ingested upload: %s", exc)
