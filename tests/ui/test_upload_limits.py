"""Upload bodies bounded while they stream, stored uploads capped per chat and per user,
one files directory per process, and ingested uploads deleted."""

from __future__ import annotations

import os
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import chainlit.config as chainlit_config
import chainlit.server as chainlit_server
import httpx
import pytest
from chainlit.session import BaseSession, HTTPSession, ws_sessions_id
from chainlit.user import User
from fastapi import HTTPException

from ingest.limits import MIB
from ui.upload_limits import (
    INSTANCE_PREFIX,
    UploadBodyLimit,
    UploadQuota,
    discard_uploads,
    install_upload_storage,
    upload_request,
)

LIMIT = 1 * MIB
CHUNK = 64 * 1024


class CountingBody:
    """A request body of `total` bytes that records how much of it was ever read."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield (
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n'
            b"Content-Type: text/plain\r\n\r\n"
        )
        piece = b"x" * CHUNK
        while self.sent < self.total:
            self.sent += len(piece)
            yield piece
        yield b"\r\n--b--\r\n"


async def _post(body: Any, headers: dict[str, str]) -> httpx.Response:
    """POST to Chainlit's real upload route (FastAPI's form parsing, Chainlit's handler)
    behind the limit."""
    app = UploadBodyLimit(chainlit_server.app, limit=lambda: LIMIT)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:
        return await client.post(
            "/project/file?session_id=nobody",
            content=body,
            headers={"content-type": "multipart/form-data; boundary=b", **headers},
        )


async def test_a_streamed_body_over_the_limit_is_refused_before_it_is_read() -> None:
    body = CountingBody(total=64 * MIB)  # sent in chunks, no Content-Length
    tracemalloc.start()
    try:
        response = await _post(body, {})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 413
    assert response.json() == {"detail": "The file is too large: uploads are limited to 1 MB."}
    assert body.sent <= LIMIT + CHUNK  # stopped at the limit, not at 64 MB
    assert peak < 8 * MIB  # memory did not grow with the body


async def test_a_declared_length_over_the_limit_is_refused_without_reading() -> None:
    body = CountingBody(total=64 * MIB)
    response = await _post(body, {"content-length": str(64 * MIB)})
    assert response.status_code == 413
    assert body.sent == 0


async def test_a_body_within_the_limit_reaches_chainlit() -> None:
    body = CountingBody(total=CHUNK)
    response = await _post(body, {})
    assert response.status_code == 404  # Chainlit's own answer: no such session
    assert response.json() == {"detail": "Session not found"}


@dataclass
class FakeSocketSession:
    """What the quota reads of a Chainlit websocket session."""

    id: str
    user: User | None
    files: dict[str, dict[str, Any]]


@pytest.fixture
def storage(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Install the upload storage into tmp_path; Chainlit's globals are restored after."""
    monkeypatch.setattr(chainlit_config, "FILES_DIRECTORY", chainlit_config.FILES_DIRECTORY)
    monkeypatch.setattr(
        chainlit_server, "FILES_DIRECTORY", vars(chainlit_server)["FILES_DIRECTORY"]
    )
    monkeypatch.setattr(BaseSession, "persist_file", BaseSession.persist_file)
    quota = UploadQuota(per_session=3000, per_user=5000)
    yield install_upload_storage(quota, files_root=tmp_path / ".files")


@pytest.fixture
def uploading(storage: Path) -> Iterator[Path]:
    """As the upload route does: files stored in the test are uploads."""
    with upload_request():
        yield storage


async def test_stored_uploads_are_capped_per_chat_and_per_user(
    uploading: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = User(identifier="alice")
    other_chat = FakeSocketSession("other", alice, {"f": {"size": 2500, "uploaded": True}})
    monkeypatch.setitem(ws_sessions_id, "other", other_chat)
    session = HTTPSession(id="chat", client_type="webapp", user=alice)
    monkeypatch.setitem(ws_sessions_id, "chat", session)

    await session.persist_file(name="a.txt", mime="text/plain", content=b"a" * 2000)
    with pytest.raises(HTTPException) as per_chat:
        await session.persist_file(name="b.txt", mime="text/plain", content=b"b" * 1500)
    assert per_chat.value.status_code == 413
    assert "This chat already holds" in str(per_chat.value.detail)
    with pytest.raises(HTTPException) as per_user:  # 2000 here + 2500 there + 900 > 5000
        await session.persist_file(name="c.txt", mime="text/plain", content=b"c" * 900)
    assert "Your chats already hold" in str(per_user.value.detail)
    await session.persist_file(name="d.txt", mime="text/plain", content=b"d" * 400)
    assert sorted(f["name"] for f in session.files.values()) == ["a.txt", "d.txt"]
    assert all(Path(f["path"]).parent.parent == uploading for f in session.files.values())


async def test_passages_shown_in_the_chat_neither_count_nor_are_refused(
    storage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chainlit stores the cited passages the app shows through the same `persist_file`:
    a long chat's citations must not fill the upload quota, nor be refused by it."""
    session = HTTPSession(id="long-chat", client_type="webapp", user=User(identifier="ada"))
    monkeypatch.setitem(ws_sessions_id, "long-chat", session)
    for answer in range(4):  # 4 x 1000 bytes of passages > the 3000-byte chat quota
        await session.persist_file(name=f"passage-{answer}", mime="text/plain", content="p" * 1000)
    assert len(session.files) == 4
    with upload_request():
        await session.persist_file(name="a.txt", mime="text/plain", content=b"a" * 2900)
        with pytest.raises(HTTPException):
            await session.persist_file(name="b.txt", mime="text/plain", content=b"b" * 200)


async def test_a_request_to_the_upload_route_is_an_upload_request() -> None:
    seen: list[bool] = []

    async def endpoint(scope: Any, receive: Any, send: Any) -> None:
        from ui.upload_limits import _IN_UPLOAD_REQUEST

        seen.append(_IN_UPLOAD_REQUEST.get())

    for path, limit in (("/project/file", LIMIT), ("/project/file", None), ("/project/x", LIMIT)):
        app = UploadBodyLimit(endpoint, limit=lambda limit=limit: limit)  # type: ignore[misc]
        scope = {"type": "http", "method": "POST", "path": path, "headers": []}
        await app(scope, None, None)  # type: ignore[arg-type]
    assert seen == [True, True, False]


async def test_zero_byte_uploads_reach_the_handler(uploading: Path) -> None:
    session = HTTPSession(id="upload-test", client_type="webapp")
    reference = await session.persist_file(name="empty.txt", mime="text/plain", content=b"")
    stored = session.files[reference["id"]]
    assert stored["size"] == 0 and Path(stored["path"]).read_bytes() == b""
    normal = await session.persist_file(name="a.txt", mime="text/plain", content=b"hi")
    assert Path(session.files[normal["id"]]["path"]).read_bytes() == b"hi"


async def test_ingested_uploads_are_deleted_and_no_longer_count(uploading: Path) -> None:
    session = HTTPSession(id="chat-2", client_type="webapp")
    kept = await session.persist_file(name="keep.txt", mime="text/plain", content=b"k")
    done = await session.persist_file(name="done.txt", mime="text/plain", content=b"d")
    done_path = Path(session.files[done["id"]]["path"])

    @dataclass
    class Element:
        chainlit_key: str
        path: str

    discard_uploads(session, [Element(done["id"], str(done_path))])
    assert not done_path.exists()
    assert list(session.files) == [kept["id"]]
    outside = uploading.parent / "not-an-upload.txt"
    outside.write_text("stay")
    discard_uploads(session, [Element("unknown", str(outside))])
    assert outside.exists()


def test_each_process_gets_its_own_files_directory(storage: Path) -> None:
    assert storage.name.startswith(f"{INSTANCE_PREFIX}{os.getpid()}-")
    assert chainlit_config.FILES_DIRECTORY == storage
    # what the server's shutdown removes is this process's directory, not the shared one
    assert vars(chainlit_server)["FILES_DIRECTORY"] == storage
    assert HTTPSession(id="s", client_type="webapp").files_dir == storage / "s"


def test_abandoned_directories_of_dead_processes_are_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chainlit_config, "FILES_DIRECTORY", chainlit_config.FILES_DIRECTORY)
    monkeypatch.setattr(
        chainlit_server, "FILES_DIRECTORY", vars(chainlit_server)["FILES_DIRECTORY"]
    )
    monkeypatch.setattr(BaseSession, "persist_file", BaseSession.persist_file)
    root = tmp_path / ".files"
    dead = root / f"{INSTANCE_PREFIX}999999999-abc"  # no such process
    living = root / f"{INSTANCE_PREFIX}{os.getppid()}-abc"  # another instance, running
    legacy = root / "12345678-aaaa-bbbb"  # not ours to judge
    for directory in (dead, living, legacy):
        directory.mkdir(parents=True)
    install_upload_storage(UploadQuota(1, 1), files_root=root)
    assert not dead.exists() and living.exists() and legacy.exists()
