"""A local stand-in for the OpenAI chat-completions API (with SSE streaming), for tests.

Runs in a background thread on a loopback port. `mode` picks its behaviour (and can be
changed while it runs, to inject a fault):

- "ok" streams a canned answer;
- "error" answers HTTP 500;
- "hang" accepts the request and never answers (not even the headers);
- "stall" streams the first `FAULT_AFTER_WORDS` words, then sends nothing more;
- "drop" streams the first words, then drops the connection mid-answer.

It records each request so tests can count attempts and read prompts.

    python -m tests.openai_standin --port 8765     # serve until interrupted (for manual runs)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

DEFAULT_ANSWER = "Similarity search returns the closest passages [1], while MMR trades some "
DEFAULT_ANSWER += "relevance for diversity [2]."
MODES = ("ok", "error", "hang", "stall", "drop")
FAULT_AFTER_WORDS = 3
FOREVER = 3600.0


class DroppedConnection(Exception):
    """Raised inside a streamed response: the server closes the connection mid-body."""


class OpenAIStandIn:
    def __init__(
        self, answer: str = DEFAULT_ANSWER, mode: str = "ok", word_delay: float = 0.01
    ) -> None:
        self.answer = answer
        self.mode = mode
        self.word_delay = word_delay
        self.requests: list[dict[str, Any]] = []
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.app = Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def reply_for(self, body: dict[str, Any]) -> str:
        """Condense requests get the follow-up back as the standalone question."""
        messages = body.get("messages", [])
        system = str(messages[0].get("content", "")) if messages else ""
        if system.startswith("Rewrite the user's last question"):
            last = str(messages[-1].get("content", ""))
            question = last.removeprefix("Follow-up question:").split("\n\n")[0].strip()
            return f"{question} (standalone)"
        return self.answer

    async def _chat(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        mode = self.mode
        assert mode in MODES, mode
        if mode == "error":
            return JSONResponse({"error": {"message": "boom", "type": "server_error"}}, 500)
        if mode == "hang":
            await asyncio.sleep(FOREVER)
        text = self.reply_for(body)
        if not body.get("stream"):
            return JSONResponse(_completion(text))
        fault = mode if mode in ("stall", "drop") else None
        return StreamingResponse(_sse(text, self.word_delay, fault), media_type="text/event-stream")

    def start(self) -> OpenAIStandIn:
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=0, log_level="warning", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the OpenAI stand-in did not start")
            time.sleep(0.02)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)


def _completion(text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-standin",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "standin",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


async def _sse(text: str, word_delay: float, fault: str | None = None) -> AsyncIterator[bytes]:
    words = text.split(" ")
    for index, word in enumerate(words):
        if fault is not None and index == FAULT_AFTER_WORDS:
            if fault == "stall":
                await asyncio.sleep(FOREVER)
            raise DroppedConnection("the stand-in drops the connection mid-answer")
        delta = {"content": word if index == 0 else " " + word}
        if index == 0:
            delta["role"] = "assistant"
        chunk = {
            "id": "chatcmpl-standin",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": "standin",
            "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
        }
        yield f"data: {json.dumps(chunk)}\n\n".encode()
        await asyncio.sleep(word_delay)
    last = {
        "id": "chatcmpl-standin",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": "standin",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
    }
    yield f"data: {json.dumps(last)}\n\n".encode()
    yield b"data: [DONE]\n\n"


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    uvicorn.run(OpenAIStandIn().app, host="127.0.0.1", port=args.port)
