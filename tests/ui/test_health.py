"""`GET /readyz` reports the store, the database and the model endpoint separately, fast,
and without addresses or raw errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from accounts.database import Database
from core.errors import StoreUnavailable
from core.providers import probe_model_endpoint
from core.settings import Settings
from tests.conftest import make_settings
from tests.fakes import InMemoryKnowledgeBase
from tests.openai_standin import OpenAIStandIn
from ui.health import HealthChecks, install_health_route


@dataclass
class _Resources:
    kb: Any


@dataclass
class _Services:
    resources: _Resources


@dataclass
class _Runtime:
    """What the checks read from `ui.runtime.AppRuntime`."""

    settings: Settings
    database: Database
    opened: _Services | None


class _DownKB(InMemoryKnowledgeBase):
    async def ping(self) -> str:
        raise StoreUnavailable(
            "Could not check the knowledge base: the knowledge base is unreachable (Milvus "
            "is down or did not answer in time). Try again at 10.1.2.3:19530."
        )


async def readyz(runtime: _Runtime) -> httpx.Response:
    app = FastAPI()

    @app.get("/{path:path}")  # a catch-all like Chainlit's: the health route must win
    async def frontend(path: str) -> str:
        return "index.html"

    install_health_route(app, HealthChecks(runtime))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        return await client.get("/readyz")


async def test_all_parts_up(database: Database, tmp_path: Any) -> None:
    runtime = _Runtime(
        make_settings(tmp_path), database, _Services(_Resources(InMemoryKnowledgeBase()))
    )
    response = await readyz(runtime)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert {k: v["ok"] for k, v in body["checks"].items()} == {
        "store": True,
        "database": True,
        "model": True,
    }
    assert body["checks"]["model"]["detail"].startswith("none configured")


async def test_each_part_is_reported_on_its_own(
    database: Database, tmp_path: Any, openai_standin: OpenAIStandIn
) -> None:
    settings = make_settings(tmp_path, openai_base_url=openai_standin.base_url)
    await probe_model_endpoint(settings, 30)  # the first call imports the client (slow)
    runtime = _Runtime(settings, database, _Services(_Resources(_DownKB())))
    response = await readyz(runtime)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["store"]["ok"] is False
    assert "unreachable" in body["checks"]["store"]["detail"]
    assert (body["checks"]["database"]["ok"], body["checks"]["model"]["ok"]) == (True, True)
    assert "10.1.2.3" not in response.text and "127.0.0.1" not in response.text

    openai_standin.stop()  # the model endpoint goes away: degraded, still answering
    runtime.opened = _Services(_Resources(InMemoryKnowledgeBase()))
    response = await readyz(runtime)
    body = response.json()
    assert (response.status_code, body["status"]) == (200, "degraded")
    assert body["checks"]["model"]["ok"] is False
    assert "unreachable" in body["checks"]["model"]["detail"]
    assert "127.0.0.1" not in response.text


async def test_a_store_not_open_yet_is_not_ready(database: Database, tmp_path: Any) -> None:
    response = await readyz(_Runtime(make_settings(tmp_path), database, None))
    assert response.status_code == 503
    assert response.json()["checks"]["store"] == {
        **response.json()["checks"]["store"],
        "ok": False,
        "detail": "not open yet (it opens with the next chat)",
    }


@pytest.mark.parametrize("text", ["Could not reach Milvus at http://10.0.0.1:19530: refused"])
def test_details_never_carry_an_address(text: str) -> None:
    from ui.health import _first_sentence

    assert "10.0.0.1" not in _first_sentence(text)
