"""Users on both backends: sign-in, names, the first admin, removal (all or none)."""

from __future__ import annotations

import pytest
from chainlit.user import User

from accounts.database import Database, UserExists
from accounts.datalayer import ChatDataLayer
from accounts.names import InvalidName
from accounts.passwords import WeakPassword
from accounts.service import FIRST_ADMIN, Accounts
from core.knowledge import LIBRARY_OWNER, AccessScope
from tests.conftest import PASSAGES
from tests.fakes import InMemoryKnowledgeBase
from tests.history_db import new_id
from tests.ui.conftest import RecordingEmitter

PASSWORD = "long enough password"


async def test_sign_in_says_nothing_about_which_part_was_wrong(accounts: Accounts) -> None:
    await accounts.add("ada", PASSWORD, admin=True)
    await accounts.add("bob", PASSWORD)
    assert await accounts.authenticate("ada", PASSWORD) is True
    assert await accounts.authenticate("bob", PASSWORD) is False
    assert await accounts.authenticate("ada", "wrong password") is None
    assert await accounts.authenticate("nobody", PASSWORD) is None

    assert await accounts.change_password("bob", "another password")
    assert await accounts.authenticate("bob", PASSWORD) is None
    assert await accounts.authenticate("bob", "another password") is False
    assert not await accounts.change_password("nobody", "another password")


async def test_names_and_passwords_are_checked(accounts: Accounts) -> None:
    with pytest.raises(InvalidName):
        await accounts.add(LIBRARY_OWNER, PASSWORD)  # nobody can own the shared library
    with pytest.raises(InvalidName):
        await accounts.add("a b", PASSWORD)
    with pytest.raises(WeakPassword):
        await accounts.add("ada", "short")
    await accounts.add("ada", PASSWORD)
    with pytest.raises(UserExists):
        await accounts.add("ada", PASSWORD)


async def test_the_first_admin_is_created_once(accounts: Accounts) -> None:
    created = await accounts.first_admin()
    assert created is not None
    name, password = created
    assert name == FIRST_ADMIN
    assert await accounts.authenticate(name, password) is True
    assert await accounts.first_admin() is None


async def _user_with_a_chat(database: Database, name: str) -> str:
    layer = ChatDataLayer(database)
    await Accounts(database).add(name, PASSWORD)
    persisted = await layer.create_user(User(identifier=name))
    assert persisted is not None
    thread_id = new_id()
    await layer.update_thread(thread_id, name="chat", user_id=persisted.id)
    return thread_id


async def test_removing_a_user_takes_their_documents_and_chats(
    database: Database,
    accounts: Accounts,
    memory_kb: InMemoryKnowledgeBase,
    chainlit_events: RecordingEmitter,
) -> None:
    await _user_with_a_chat(database, "alice")
    await _user_with_a_chat(database, "bob")
    [alice] = [u for u in await accounts.overview(memory_kb) if u.account.name == "alice"]
    assert (alice.account.chats, alice.documents) == (1, 1)

    assert await accounts.remove("alice", memory_kb)
    assert [a.name for a in await database.accounts()] == ["bob"]
    assert await memory_kb.count(AccessScope(owners=("alice",))) == 0
    assert await memory_kb.count(AccessScope(owners=("bob", LIBRARY_OWNER))) == 3
    assert not await accounts.remove("alice", memory_kb)


class BrokenKnowledgeBase(InMemoryKnowledgeBase):
    async def remove_document(self, source: str, scope: AccessScope) -> int:
        raise ConnectionError("Milvus is down")


async def test_a_failed_removal_changes_nothing_in_sql(
    database: Database,
    accounts: Accounts,
    fake_embeddings: object,
    chainlit_events: RecordingEmitter,
) -> None:
    kb = BrokenKnowledgeBase(embeddings=fake_embeddings)  # type: ignore[arg-type]
    await kb.add_chunks(PASSAGES)
    await _user_with_a_chat(database, "alice")
    with pytest.raises(ConnectionError):
        await accounts.remove("alice", kb)
    assert [a.name for a in await database.accounts()] == ["alice"]
    assert (await database.accounts())[0].chats == 1
