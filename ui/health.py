"""`GET /readyz`: whether the app can answer, part by part.

Chainlit's own `GET /health` only says the process is up. This one checks the knowledge
base, the chat-history database and the model endpoint separately, concurrently, each
within `CHECK_TIMEOUT`, and answers 200 when questions can be answered (the model may be
down: answers then fall back to the passages) or 503 when the store or the database is
down. The body holds fixed phrases only: no addresses, keys or raw error messages.
Concurrent requests share one round of checks, and a round is reused for `REUSE_FOR`
seconds, so polling it costs the store and the model almost nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from dataclasses import asdict, dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from core.errors import UserFacingError
from core.providers import probe_model_endpoint

logger = logging.getLogger(__name__)

CHECK_TIMEOUT = 2.0
REUSE_FOR = 1.0
PATH = "/readyz"


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str
    ms: int


@dataclass(frozen=True)
class Readiness:
    store: Check
    database: Check
    model: Check

    @property
    def status(self) -> str:
        if not (self.store.ok and self.database.ok):
            return "unavailable"
        return "ok" if self.model.ok else "degraded"

    def body(self) -> dict[str, Any]:
        return {"status": self.status, "checks": {k: asdict(v) for k, v in vars(self).items()}}


class HealthChecks:
    """Runs the three checks for the runtime (`ui.runtime.AppRuntime`)."""

    def __init__(self, runtime: Any) -> None:
        self._runtime = runtime
        self._round: asyncio.Task[Readiness] | None = None
        self._finished = 0.0

    async def readiness(self) -> Readiness:
        fresh = time.monotonic() - self._finished < REUSE_FOR
        if self._round is None or (self._round.done() and not fresh):
            self._round = asyncio.create_task(self._check_all())
        return await asyncio.shield(self._round)

    async def _check_all(self) -> Readiness:
        store, database, model = await asyncio.gather(
            _timed("store", self._store()),
            _timed("database", self._database()),
            _timed("model", self._model()),
        )
        self._finished = time.monotonic()
        return Readiness(store, database, model)

    async def _store(self) -> str:
        services = self._runtime.opened
        if services is None:
            raise UserFacingError("not open yet (it opens with the next chat)")
        return str(await services.resources.kb.ping())

    async def _database(self) -> str:
        await self._runtime.database.ping()
        return "answers"

    async def _model(self) -> str:
        settings = self._runtime.settings
        if not settings.chat_model_configured:
            return "none configured: answers show the passages found"
        return await probe_model_endpoint(settings, CHECK_TIMEOUT)


async def _timed(name: str, check: Awaitable[str]) -> Check:
    started = time.monotonic()
    try:
        detail, ok = await asyncio.wait_for(check, CHECK_TIMEOUT), True
    except TimeoutError:
        detail, ok = f"did not answer within {CHECK_TIMEOUT:g} s", False
    except UserFacingError as exc:
        detail, ok = _first_sentence(str(exc)), False
    except Exception as exc:  # a raw error may carry an address: logged, not shown
        logger.warning("health check of the %s failed: %s", name, type(exc).__name__)
        detail, ok = "failed (see the app's log)", False
    return Check(ok, detail, round((time.monotonic() - started) * 1000))


def _first_sentence(text: str) -> str:
    """Our messages' first sentence says what is wrong; the rest may name the server."""
    return text.split(". ")[0].split(" at ")[0].rstrip(".")


def install_health_route(app: FastAPI, checks: HealthChecks) -> None:
    """Serve `GET /readyz`, placed before Chainlit's catch-all route."""

    async def readyz() -> JSONResponse:
        readiness = await checks.readiness()
        code = 503 if readiness.status == "unavailable" else 200
        return JSONResponse(
            readiness.body(), status_code=code, headers={"Cache-Control": "no-store"}
        )

    app.router.add_api_route(PATH, readyz, methods=["GET"], include_in_schema=False)
    app.router.routes.insert(0, app.router.routes.pop())
