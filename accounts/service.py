"""What the project does with users: add, sign in, change passwords, list with their
documents, remove with their documents and chats, and the first admin of a new install.

Both the `python -m accounts` command and the app's admin commands use this.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from accounts.database import Account, Database
from accounts.names import check_name
from accounts.passwords import hash_password, verify_password
from core.knowledge import AccessScope, KnowledgeBase

FIRST_ADMIN = "admin"


@dataclass(frozen=True)
class UserOverview:
    account: Account
    documents: int
    chunks: int


def owned_by(name: str) -> AccessScope:
    """Only `name`'s own documents: never the shared library."""
    return AccessScope(owners=(name,))


class Accounts:
    """Users stored in the chat-history database."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def add(self, name: str, password: str, *, admin: bool = False) -> None:
        await self.database.add_user(check_name(name), await hash_password(password), admin=admin)

    async def authenticate(self, name: str, password: str) -> bool | None:
        """None for a wrong name or password (the same for both); else whether the user
        is an admin."""
        found = await self.database.credentials(name)
        stored, admin = found if found is not None else (None, False)
        if not await verify_password(stored, password):
            return None
        return admin

    async def change_password(self, name: str, password: str) -> bool:
        return await self.database.set_password(name, await hash_password(password))

    async def is_admin(self, name: str) -> bool:
        return await self.database.is_admin(name)

    async def overview(self, kb: KnowledgeBase) -> list[UserOverview]:
        result = []
        for account in await self.database.accounts():
            scope = owned_by(account.name)
            documents = await kb.list_documents(scope)
            result.append(UserOverview(account, len(documents), sum(d.chunks for d in documents)))
        return result

    async def remove(self, name: str, kb: KnowledgeBase) -> bool:
        """Remove a user, their documents and their chats: all of it or, if removing the
        documents fails, none of the SQL side (run it again to finish)."""

        async def remove_documents() -> None:
            for document in await kb.list_documents(owned_by(name)):
                await kb.remove_document(document.source, owned_by(name))

        return await self.database.remove_user(name, before_commit=remove_documents)

    async def first_admin(self) -> tuple[str, str] | None:
        """On an install with no users, create an admin with a random password and return
        `(name, password)`; None when users exist."""
        if await self.database.accounts():
            return None
        password = secrets.token_urlsafe(12)
        await self.add(FIRST_ADMIN, password, admin=True)
        return FIRST_ADMIN, password
