"""Sign-in and the feedback routes' ownership check, over HTTP against Chainlit's own
route handlers and a real history database (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import chainlit.data as chainlit_data
import httpx
import pytest
from chainlit import server as chainlit_server
from chainlit.auth import get_current_user
from chainlit.config import config as chainlit_config
from chainlit.types import Feedback
from chainlit.user import PersistedUser, User
from fastapi import FastAPI

from accounts.database import Database
from accounts.datalayer import ChatDataLayer
from accounts.service import Accounts
from tests.history_db import new_id
from tests.ui.conftest import RecordingEmitter
from ui.auth import install_feedback_guard, sign_in, sign_in_from_header

PASSWORD = "long enough password"


async def test_sign_in_gives_one_answer_for_every_failure(accounts: Accounts) -> None:
    await accounts.add("ada", PASSWORD, admin=True)
    user = await sign_in(accounts, "ada", PASSWORD)
    assert user is not None and user.identifier == "ada" and user.metadata == {"role": "admin"}
    assert await sign_in(accounts, "ada", "not the password") is None
    assert await sign_in(accounts, "nobody", PASSWORD) is None


@pytest.fixture
def layer(database: Database) -> Iterator[ChatDataLayer]:
    """Chainlit's routes find our data layer the way the app registers it."""
    layer = ChatDataLayer(database)
    saved = chainlit_config.code.data_layer
    chainlit_config.code.data_layer = lambda: layer
    chainlit_data._data_layer, chainlit_data._data_layer_initialized = None, False
    try:
        yield layer
    finally:
        chainlit_config.code.data_layer = saved
        chainlit_data._data_layer, chainlit_data._data_layer_initialized = None, False


class Caller:
    user: PersistedUser | None = None


async def rated_answer(layer: ChatDataLayer, name: str) -> tuple[PersistedUser, str, str]:
    """A user with a chat holding one rated answer: `(user, answer id, feedback id)`; the
    chat's id is the answer's id with a "t-" in front."""
    await Accounts(layer_database(layer)).add(name, PASSWORD)
    user = await layer.create_user(User(identifier=name))
    assert user is not None
    step_id = new_id()
    thread_id = f"t-{step_id}"
    await layer.update_thread(thread_id, user_id=user.id)
    await layer.create_step(
        {"id": step_id, "threadId": thread_id, "name": "a", "type": "assistant_message"}
        | {"output": "answer", "streaming": False}
    )
    feedback_id = await layer.upsert_feedback(Feedback(forId=step_id, value=1, threadId=thread_id))
    return user, step_id, feedback_id


def layer_database(layer: ChatDataLayer) -> Database:
    return Database(layer.engine)


async def client_for(guarded: bool, database: Database, caller: Caller) -> httpx.AsyncClient:
    app = FastAPI()
    app.include_router(chainlit_server.router)
    app.dependency_overrides[get_current_user] = lambda: caller.user
    if guarded:
        install_feedback_guard(app, database)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app")


@pytest.fixture
async def two_users(
    layer: ChatDataLayer, chainlit_events: RecordingEmitter
) -> AsyncIterator[tuple[PersistedUser, str, str, PersistedUser, str]]:
    ada, ada_answer, ada_feedback = await rated_answer(layer, "ada")
    bob, bob_answer, _ = await rated_answer(layer, "bob")
    yield ada, ada_answer, ada_feedback, bob, bob_answer


def put(step_id: str, feedback_id: str | None, value: int, claimed_chat: str) -> dict[str, object]:
    """A rating as the browser sends it, with whatever chat id the caller claims."""
    feedback = {"forId": step_id, "value": value, "comment": "overwritten"}
    feedback["threadId"] = claimed_chat
    if feedback_id is not None:
        feedback["id"] = feedback_id
    return {"feedback": feedback, "sessionId": "s"}


async def ada_rating(database: Database) -> tuple[int, str | None]:
    [record] = [r for r in await database.feedback() if r.user == "ada"]
    return record.value, record.comment


async def test_chainlit_alone_lets_anyone_overwrite_a_rating(
    database: Database, two_users: tuple[PersistedUser, str, str, PersistedUser, str]
) -> None:
    """The gap the guard closes (if Chainlit fixes it, this test says so)."""
    _, ada_answer, ada_feedback, bob, bob_answer = two_users
    caller = Caller()
    caller.user = bob
    async with await client_for(False, database, caller) as client:
        response = await client.put(
            "/feedback", json=put(ada_answer, ada_feedback, 0, f"t-{bob_answer}")
        )
    assert response.status_code == 200
    assert await ada_rating(database) == (0, "overwritten")


async def test_the_guard_keeps_ratings_to_their_owner(
    database: Database, two_users: tuple[PersistedUser, str, str, PersistedUser, str]
) -> None:
    ada, ada_answer, ada_feedback, bob, bob_answer = two_users
    caller = Caller()
    async with await client_for(True, database, caller) as client:
        caller.user = bob
        for body in (
            put(ada_answer, ada_feedback, 0, f"t-{bob_answer}"),
            put(ada_answer, None, 0, f"t-{bob_answer}"),
        ):
            assert (await client.put("/feedback", json=body)).status_code == 404
        # bob's own message, but ada's feedback id: refused too
        assert (
            await client.put("/feedback", json=put(bob_answer, ada_feedback, 0, f"t-{bob_answer}"))
        ).status_code == 404
        deleted = await client.request("DELETE", "/feedback", json={"feedbackId": ada_feedback})
        assert deleted.status_code == 404
        assert await ada_rating(database) == (1, None)

        caller.user = None
        assert (
            await client.put("/feedback", json=put(ada_answer, None, 0, f"t-{bob_answer}"))
        ).status_code == 401

        caller.user = ada
        assert (
            await client.put("/feedback", json=put(ada_answer, ada_feedback, 0, f"t-{ada_answer}"))
        ).status_code == 200
        assert await ada_rating(database) == (0, "overwritten")
        deleted = await client.request("DELETE", "/feedback", json={"feedbackId": ada_feedback})
        assert deleted.status_code == 200
    assert [r.user for r in await database.feedback()] == ["bob"]


async def test_header_sign_in_trusts_only_a_valid_name(accounts: Accounts) -> None:
    """Behind a proxy that authenticates (`AUTH_HEADER`): the named user is signed in, and
    created on first sight with no password; a missing or malformed name signs no one in."""
    header = "X-Forwarded-User"
    user = await sign_in_from_header(accounts, header, {header: "carol"})
    assert user is not None and user.identifier == "carol" and user.metadata == {"role": "user"}
    assert await sign_in_from_header(accounts, header, {header: "carol"}) == user  # no twin
    assert await sign_in(accounts, "carol", "") is None  # a header user has no password
    await accounts.add("ada", PASSWORD, admin=True)
    admin = await sign_in_from_header(accounts, header, {header: "ada"})
    assert admin is not None and admin.metadata == {"role": "admin"}
    for headers in ({}, {header: ""}, {header: "../ada"}, {header: "a" * 500}, {"Other": "ada"}):
        assert await sign_in_from_header(accounts, header, headers) is None
