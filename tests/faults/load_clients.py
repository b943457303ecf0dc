"""The load test's users: chat clients on Chainlit's real Socket.IO protocol, and browser
pages that upload files through the chat's attach control.

A `ChatClient` speaks what the page's own client speaks (`chainlit/socket.py`,
`chainlit/emitter.py`): it signs in through `POST /login`, connects with the access-token
cookie and a session id of its own making, emits `connection_successful` (which runs
`on_chat_start`), and sends each question as a `client_message`. The server answers with
`task_start`, the message steps (`new_message`, `stream_start`, `stream_token`,
`update_message`) and `task_end`; a turn is over at `task_end`.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import aiohttp
import httpx
import socketio
from playwright.async_api import Browser, expect

from tests.e2e.conftest import PASSWORD

Verdict = Literal["answered", "passages only", "error", "no reply", "hung"]
WELCOME = re.compile(r"The knowledge base (holds|is \*\*empty)")
UPLOAD_REPORT = "to the knowledge base**"
WAITING = "Waiting for the language model"
MODEL_FAILED = "The language model could not answer"


@dataclass
class Turn:
    """One message sent and what the server sent back until its `task_end`."""

    sent_at: float
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    first_token_at: float | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    order: list[str] = field(default_factory=list)  # step ids and "task_end", as received

    def ended_after(self, pattern: re.Pattern[str]) -> bool:
        """Whether a `task_end` came after a message matching `pattern`."""
        for index, key in enumerate(self.order):
            if pattern.search(str(self.steps.get(key, {}).get("output", ""))):
                return "task_end" in self.order[index:]
        return False

    def messages(self) -> list[dict[str, Any]]:
        return [s for s in self.steps.values() if str(s.get("type", "")).endswith("_message")]

    def errors(self) -> list[str]:
        return [str(s.get("output", "")) for s in self.messages() if s.get("isError")]

    def answers(self) -> list[str]:
        """The assistant's replies other than an upload report or the waiting notice."""
        return [
            text
            for s in self.messages()
            if s.get("type") == "assistant_message" and not s.get("isError")
            for text in [str(s.get("output", ""))]
            if text.strip() and UPLOAD_REPORT not in text and WAITING not in text
        ]

    def upload_reports(self) -> list[str]:
        return [
            str(s.get("output", ""))
            for s in self.messages()
            if UPLOAD_REPORT in str(s.get("output", ""))
        ]


@dataclass(frozen=True)
class Outcome:
    """How one question went: the verdict, seconds to the end of the turn, and the text."""

    user: str
    verdict: Verdict
    seconds: float
    detail: str = ""


async def sign_in(url: str, user: str) -> str:
    """The cookie header of a signed-in `user` (the login form's route)."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        response = await http.post("/login", data={"username": user, "password": PASSWORD})
        response.raise_for_status()
        return "; ".join(f"{name}={value}" for name, value in http.cookies.items())


class ChatClient:
    """One signed-in user in one chat, over Socket.IO; one turn at a time."""

    def __init__(self, url: str, user: str) -> None:
        self.url = url
        self.user = user
        self.session_id = str(uuid.uuid4())
        self.thread_id = str(uuid.uuid4())
        self.cookie = ""
        # Our own HTTP session (made inside the running loop), closed by `close` even when
        # the connection never opened; engine.io's 5 s request timeout is too short for a
        # server under load.
        self._http = aiohttp.ClientSession()
        self.sio = socketio.AsyncClient(
            reconnection=True, request_timeout=60, http_session=self._http
        )
        self._turn = Turn(sent_at=time.monotonic())
        for event in ("new_message", "update_message", "stream_start"):
            self.sio.on(event, self._on_step)
        self.sio.on("stream_token", self._on_token)
        self.sio.on("task_end", self._on_task_end)

    async def _on_step(self, step: dict[str, Any]) -> None:
        key = str(step.get("id"))
        if key not in self._turn.steps:
            self._turn.order.append(key)
        self._turn.steps[key] = dict(step)

    async def _on_token(self, data: dict[str, Any]) -> None:
        step = self._turn.steps.setdefault(str(data.get("id")), {"type": "assistant_message"})
        token = str(data.get("token", ""))
        step["output"] = token if data.get("isSequence") else str(step.get("output", "")) + token
        if WAITING not in token and self._turn.first_token_at is None:
            self._turn.first_token_at = time.monotonic()

    async def _on_task_end(self, _data: Any = None) -> None:
        self._turn.order.append("task_end")
        self._turn.ended.set()

    async def open(self, wait_seconds: float) -> None:
        """Sign in, connect and wait for the chat start (its welcome, then `task_end`)."""
        self.cookie = await sign_in(self.url, self.user)
        self._turn = Turn(sent_at=time.monotonic())
        await self.sio.connect(
            self.url,
            socketio_path="/ws/socket.io",
            headers={"Cookie": self.cookie},
            auth={
                "clientType": "webapp",
                "sessionId": self.session_id,
                "threadId": self.thread_id,
                "userEnv": "{}",
                "chatProfile": None,
            },
            transports=["websocket"],
            wait_timeout=wait_seconds,  # 1 s by default: too short for a busy server
        )
        await self.sio.emit("connection_successful")
        async with asyncio.timeout(wait_seconds):
            while not self._turn.ended_after(WELCOME):
                if self._turn.errors():
                    raise RuntimeError(f"{self.user}: {self._turn.errors()[0]}")
                await asyncio.sleep(0.05)

    async def upload(self, name: str, data: bytes) -> str:
        """Upload a file into this chat's session (the attach control's request); its id."""
        async with httpx.AsyncClient(base_url=self.url, timeout=60) as http:
            response = await http.post(
                "/project/file",
                params={"session_id": self.session_id},
                files={"file": (name, data, "text/plain")},
                headers={"Cookie": self.cookie},
            )
            response.raise_for_status()
            return str(response.json()["id"])

    async def say(self, text: str, wait_seconds: float, files: list[str] | None = None) -> Turn:
        """Send a message (with uploaded file ids) and wait for its `task_end`; the turn,
        whose `ended` is unset when the server never ended it within `wait_seconds`."""
        turn = self._turn = Turn(sent_at=time.monotonic())
        message = {
            "id": str(uuid.uuid4()),
            "threadId": self.thread_id,
            "name": self.user,
            "type": "user_message",
            "output": text,
            "createdAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        references = [{"id": file_id} for file_id in files or []]
        await self.sio.emit("client_message", {"message": message, "fileReferences": references})
        try:
            async with asyncio.timeout(wait_seconds):
                await turn.ended.wait()
        except TimeoutError:
            pass
        return turn

    async def close(self) -> None:
        await self.sio.disconnect()
        await self._http.close()


def judge(user: str, turn: Turn) -> Outcome:
    """An answer (from the model, or the passages with the reason the model failed), a
    clear error, or neither (nothing said, or no end within the deadline)."""
    seconds = time.monotonic() - turn.sent_at
    if not turn.ended.is_set():
        return Outcome(user, "hung", seconds, _last_words(turn))
    if errors := [e for e in turn.errors() if e.strip()]:
        return Outcome(user, "error", seconds, errors[0][:200])
    if answers := turn.answers():
        verdict: Verdict = "passages only" if MODEL_FAILED in answers[-1] else "answered"
        return Outcome(user, verdict, seconds, answers[-1][:200])
    return Outcome(user, "no reply", seconds, _last_words(turn))


def _last_words(turn: Turn) -> str:
    outputs = [str(m.get("output", ""))[:120] for m in turn.messages()]
    return " | ".join(outputs) or "(nothing)"


@dataclass(frozen=True)
class BrowserUpload:
    """One file attached in a browser page and whether the chat acknowledged it."""

    user: str
    name: str
    data: bytes
    acknowledged: bool
    seconds: float
    detail: str = ""


async def browser_uploads(
    browser: Browser,
    url: str,
    user: str,
    files: Iterator[tuple[str, bytes, int]],
    folder: Path,
    stop_at: float,
    wait_seconds: float,
) -> list[BrowserUpload]:
    """A signed-in page attaching one file per message until `stop_at`; the first one as
    soon as the message box appears (before the chat session is surely ready). `files`
    yields `(name, data, expected_chunks)`; each must be reported added with that count."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    results: list[BrowserUpload] = []
    waiting = wait_seconds * 1000  # for each step (Playwright's expect waits 5 s)
    try:
        signed_in = await context.request.post(
            f"{url}/login",
            form={"username": user, "password": PASSWORD},
            timeout=waiting,
        )
        assert signed_in.ok, await signed_in.text()
        page = await context.new_page()
        page.set_default_timeout(waiting)
        await page.goto(url)
        await expect(page.locator("#chat-input")).to_be_visible(timeout=waiting)
        while not results or time.monotonic() < stop_at:  # one upload at least
            name, data, chunks = next(files)
            path = folder / name
            path.write_bytes(data)
            started = time.monotonic()
            detail = ""
            try:
                await page.set_input_files("#upload-button-input", str(path))
                await expect(page.locator("#attachments")).to_contain_text(name, timeout=waiting)
                # enabled once the upload is done
                await expect(page.locator("#chat-submit")).to_be_enabled(timeout=waiting)
                await page.locator("#chat-submit").click()
                report = page.locator("[data-step-type='assistant_message']", has_text=name)
                await expect(report.last).to_contain_text(
                    f"{name}: added, {chunks} chunks", timeout=waiting
                )
                await expect(page.locator("#stop-button")).to_have_count(0, timeout=waiting)
                acknowledged = True
            except Exception as exc:  # a timeout or a failed expectation: recorded
                acknowledged = False
                detail = f"{type(exc).__name__}: {str(exc)[:300]}"
            results.append(
                BrowserUpload(user, name, data, acknowledged, time.monotonic() - started, detail)
            )
            if not acknowledged:
                break  # the page is in an unknown state; the failure is recorded
    finally:
        await context.close()
    return results
