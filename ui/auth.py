"""Signing in, and the ownership checks Chainlit 2.12 leaves out.

- Password sign-in against the users in the chat-history database. A wrong name and a
  wrong password get the same answer (Chainlit's one "sign in failed" message).
- Optional header sign-in behind a proxy that authenticates (`AUTH_HEADER`).
- `PUT /feedback` and `DELETE /feedback` in Chainlit do not check that the rated message
  belongs to the caller: `install_feedback_guard` puts routes in front of them that do.
"""

from __future__ import annotations

from collections.abc import Mapping

import chainlit as cl
from chainlit import server as chainlit_server
from chainlit.types import DeleteFeedbackRequest, UpdateFeedbackRequest
from chainlit.user import PersistedUser, User
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import Response

from accounts.database import Database
from accounts.names import InvalidName, check_name
from accounts.service import Accounts

ADMIN_ROLE = "admin"


async def sign_in(accounts: Accounts, name: str, password: str) -> cl.User | None:
    admin = await accounts.authenticate(name, password)
    if admin is None:
        return None
    return cl.User(identifier=name, metadata={"role": ADMIN_ROLE if admin else "user"})


async def sign_in_from_header(
    accounts: Accounts, header: str, headers: Mapping[str, str]
) -> cl.User | None:
    """The user the proxy vouches for in `header` (created on first sight, no password)."""
    try:
        name = check_name(headers.get(header, ""))
    except InvalidName:
        return None
    await accounts.database.ensure_user(name)
    admin = await accounts.is_admin(name)
    return cl.User(identifier=name, metadata={"role": ADMIN_ROLE if admin else "user"})


def _caller(user: User | PersistedUser | None) -> str:
    if user is None:
        raise HTTPException(status_code=401, detail="Sign in first")
    return user.identifier


async def _check_rated_message(
    database: Database, caller: str, update: UpdateFeedbackRequest
) -> None:
    chat = await database.step_chat(update.feedback.forId)
    if chat is None or chat[1] != caller:
        raise HTTPException(status_code=404, detail="No such message")
    if update.feedback.id is not None:
        owner = await database.feedback_owner(update.feedback.id)
        if owner is not None and owner != caller:
            raise HTTPException(status_code=404, detail="No such feedback")
    update.feedback.threadId = chat[0]  # the message's own chat, not what the browser said


def install_feedback_guard(app: FastAPI, database: Database) -> None:
    """Answer `PUT` / `DELETE /feedback` with routes that check ownership first and then
    call Chainlit's own handlers; placed before Chainlit's routes, so they win."""

    async def update_feedback(
        request: Request, update: UpdateFeedbackRequest, current_user: chainlit_server.UserParam
    ) -> Response:
        await _check_rated_message(database, _caller(current_user), update)
        response: Response = await chainlit_server.update_feedback(request, update, current_user)
        return response

    async def delete_feedback(
        request: Request, payload: DeleteFeedbackRequest, current_user: chainlit_server.UserParam
    ) -> Response:
        if await database.feedback_owner(payload.feedbackId) != _caller(current_user):
            raise HTTPException(status_code=404, detail="No such feedback")
        response: Response = await chainlit_server.delete_feedback(request, payload, current_user)
        return response

    path = f"{chainlit_server.router.prefix}/feedback"
    app.router.add_api_route(path, update_feedback, methods=["PUT"])
    app.router.add_api_route(path, delete_feedback, methods=["DELETE"])
    guarded = app.router.routes[-2:]
    del app.router.routes[-2:]
    app.router.routes[0:0] = guarded
