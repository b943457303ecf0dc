"""Against a real `chainlit run`: an oversized upload body is refused while it streams
(the server's memory does not grow with it), a 1 MB message gets a reply instead of a
dropped connection, and stopping one of two instances in the same folder leaves the
other's uploads alone."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio

from tests.e2e.conftest import PASSWORD, ROOT, USERS, StartApp, launch_app, stop_apps

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024


def _server_pid(url: str) -> int:
    """The pid of the `chainlit run` listening on `url`'s port."""
    port = url.rsplit(":", 1)[1]
    listing = subprocess.run(
        ["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    return int(listing.split("pid=", 1)[1].split(",", 1)[0])


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_an_oversized_upload_is_refused_while_it_streams(start_app: StartApp) -> None:
    url = start_app(MAX_FILE_MB="1")
    pid = _server_pid(url)
    sent = 0

    def body() -> Iterator[bytes]:
        nonlocal sent
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n\r\n'
        piece = b"x" * (256 * 1024)
        while sent < 300 * MIB:
            sent += len(piece)
            yield piece
        yield b"\r\n--b--\r\n"

    before = _peak_rss_mb(pid)
    started = time.monotonic()
    with httpx.Client(timeout=60) as client:
        try:
            response = client.post(
                f"{url}/project/file?session_id=nobody",
                content=body(),
                headers={"content-type": "multipart/form-data; boundary=b"},
            )
            status = response.status_code
            detail = response.json()["detail"]
        except httpx.HTTPError:  # the server may close the connection as it answers
            status, detail = 413, "closed"
    assert status == 413, detail
    assert time.monotonic() - started < 30
    assert sent < 300 * MIB  # the client was stopped long before it sent it all
    assert _peak_rss_mb(pid) - before < 50  # the server did not buffer the body


async def test_a_message_over_the_socket_limit_gets_a_reply(start_app: StartApp) -> None:
    url = start_app()
    async with httpx.AsyncClient(base_url=url) as http:
        signed_in = await http.post("/login", data={"username": USERS[0], "password": PASSWORD})
        assert signed_in.is_success, signed_in.text
        cookie = "; ".join(f"{name}={value}" for name, value in http.cookies.items())
    replies: asyncio.Queue[str] = asyncio.Queue()
    client = socketio.AsyncClient()

    @client.on("new_message")  # type: ignore[untyped-decorator]
    async def on_new_message(step: dict[str, Any]) -> None:
        await replies.put(str(step.get("output", "")))

    thread = str(uuid.uuid4())
    await client.connect(
        url,
        socketio_path="/ws/socket.io",
        headers={"Cookie": cookie},
        auth={"clientType": "webapp", "sessionId": str(uuid.uuid4()), "threadId": thread},
        transports=["websocket"],
    )
    try:
        await client.emit("connection_successful")
        await _reply_containing(replies, "The knowledge base holds")

        async def say(text: str) -> None:
            message = {
                "id": str(uuid.uuid4()),
                "threadId": thread,
                "name": USERS[0],
                "type": "user_message",
                "output": text,
                "createdAt": "2026-01-01T00:00:00Z",
            }
            await client.emit("client_message", {"message": message, "fileReferences": []})

        await say("x" * 1_000_000)  # over engine.io's default 1 MB frame
        await _reply_containing(replies, "Your message is over the limit of 20,000 characters")
        assert client.connected
        await say("/docs")  # the same socket goes on working
        await _reply_containing(replies, "Remove one with")
    finally:
        await client.disconnect()


async def _reply_containing(replies: asyncio.Queue[str], text: str) -> str:
    async with asyncio.timeout(60):
        while True:
            reply = await replies.get()
            if text in reply:
                return reply


def test_stopping_one_instance_keeps_the_others_uploads(tmp_path: Path) -> None:
    first: list[subprocess.Popen[str]] = []
    second: list[subprocess.Popen[str]] = []
    try:
        launch_app(tmp_path / "one", first)
        launch_app(tmp_path / "two", second)
        files = ROOT / ".files"
        mine = {p.name for p in files.iterdir() if p.name.startswith("instance-")}
        pids = {str(first[0].pid), str(second[0].pid)}
        ours = {name for name in mine if name.split("-")[1] in pids}
        assert len(ours) == 2, mine
        stop_apps(first)
        left = {p.name for p in files.iterdir()}
        assert [n for n in ours if n.split("-")[1] == str(second[0].pid)][0] in left
        assert [n for n in ours if n.split("-")[1] == str(first[0].pid)][0] not in left
    finally:
        stop_apps(first + second)
