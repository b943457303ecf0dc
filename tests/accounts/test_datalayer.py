"""Chainlit's data layer on our migrated schema, on SQLite and PostgreSQL: messages
really land in `steps`, chats list per user, a chat resumes with its memory, settings and
passages, and feedback is stored with what it rated."""

from __future__ import annotations

from typing import Any

from chainlit.message import Message
from chainlit.step import Step
from chainlit.types import Feedback, Pagination, ThreadFilter
from chainlit.user import PersistedUser, User

from accounts.database import Database
from accounts.datalayer import ChatDataLayer
from accounts.service import Accounts
from chains.options import SearchOptions
from chains.retriever import Passage, Retrieval
from tests.history_db import new_id
from tests.ui.conftest import RecordingEmitter
from ui import history


async def user(layer: ChatDataLayer, accounts: Accounts, name: str) -> PersistedUser:
    await accounts.add(name, "long enough password")
    persisted = await layer.create_user(User(identifier=name))
    assert persisted is not None
    return persisted


async def chat(layer: ChatDataLayer, owner: PersistedUser) -> str:
    thread_id = new_id()
    await layer.update_thread(thread_id, name="a chat", user_id=owner.id, tags=["t"])
    return thread_id


async def say(
    layer: ChatDataLayer, thread_id: str, text: str, kind: str, **extra: Any
) -> dict[str, Any]:
    message = Message(content=text, type=kind, **extra)  # type: ignore[arg-type]
    step = message.to_dict()
    step["threadId"] = thread_id
    await layer.create_step(step)
    return dict(step)


RETRIEVAL = Retrieval(
    query="what is alpha?",
    passages=[
        Passage(n=1, source="a.txt", page=None, score=0.9, text="alpha text"),
        Passage(n=2, source="c.pdf", page=2, score=0.5, text="gamma text"),
    ],
    milliseconds=3.0,
    search_type="mmr",
)
OPTIONS = SearchOptions(search_type="mmr", k=2, scope="chat")


async def test_a_message_lands_in_steps(
    database: Database, accounts: Accounts, chainlit_events: RecordingEmitter
) -> None:
    layer = ChatDataLayer(database)
    thread_id = await chat(layer, await user(layer, accounts, "ada"))
    await say(layer, thread_id, "hello there", "user_message", metadata={"tags": ["x"]})
    run = Step(name="on_message", type="run", thread_id=thread_id).to_dict()
    run["modes"] = {"model": "x"}  # a non-empty dict fails on both backends without help
    assert "autoCollapse" in run  # the column Chainlit's documented schema lacks
    await layer.create_step(run)

    async with database.engine.connect() as connection:
        rows = (
            await connection.exec_driver_sql('SELECT type, output, "threadId" FROM steps')
        ).all()
    assert sorted(tuple(r) for r in rows) == [
        ("run", "", thread_id),
        ("user_message", "hello there", thread_id),
    ]


async def test_chats_list_per_user(
    database: Database, accounts: Accounts, chainlit_events: RecordingEmitter
) -> None:
    layer = ChatDataLayer(database)
    ada, bob = await user(layer, accounts, "ada"), await user(layer, accounts, "bob")
    ada_chat, bob_chat = await chat(layer, ada), await chat(layer, bob)
    await say(layer, ada_chat, "ada's question", "user_message")
    await say(layer, bob_chat, "bob's question", "user_message")

    for who, own in ((ada, ada_chat), (bob, bob_chat)):
        page = await layer.list_threads(Pagination(first=20), ThreadFilter(userId=who.id))
        assert [t["id"] for t in page.data] == [own]
    assert await layer.get_thread_author(ada_chat) == "ada"


async def test_a_chat_resumes_with_memory_settings_and_passages(
    database: Database, accounts: Accounts, chainlit_events: RecordingEmitter
) -> None:
    layer = ChatDataLayer(database)
    thread_id = await chat(layer, await user(layer, accounts, "ada"))
    for n in (1, 2):
        await say(layer, thread_id, f"question {n}", "user_message")
        await say(
            layer,
            thread_id,
            f"answer {n} [1]",
            "assistant_message",
            metadata=history.answer_metadata(f"question {n}", OPTIONS, RETRIEVAL, [1]),
        )
    await say(layer, thread_id, "Removed `x` (1 chunks).", "assistant_message")  # a reply

    thread = await layer.get_thread(thread_id)
    assert thread is not None
    steps = list(thread["steps"])
    memory = history.restore_memory(steps)
    assert [m.content for m in memory.messages()] == [
        "question 1",
        "answer 1 [1]",
        "question 2",
        "answer 2 [1]",
    ]
    assert history.restore_options(steps) == OPTIONS

    await history.resend_citations(steps)
    elements = chainlit_events.of("element")
    assert [e["name"] for e in elements] == ["[1]", "[1]"]
    answer_ids = [s["id"] for s, _ in history.answers(steps)]
    assert [e["forId"] for e in elements] == answer_ids


async def test_feedback_is_stored_with_what_it_rated(
    database: Database, accounts: Accounts, chainlit_events: RecordingEmitter
) -> None:
    layer = ChatDataLayer(database)
    thread_id = await chat(layer, await user(layer, accounts, "ada"))
    answer = await say(
        layer,
        thread_id,
        "alpha [1]",
        "assistant_message",
        metadata=history.answer_metadata("what is alpha?", OPTIONS, RETRIEVAL, [1]),
    )
    feedback_id = await layer.upsert_feedback(
        Feedback(forId=answer["id"], value=0, threadId=thread_id, comment="wrong source")
    )

    [record] = await database.feedback()
    assert (record.user, record.value, record.comment, record.answer) == (
        "ada",
        0,
        "wrong source",
        "alpha [1]",
    )
    rated = record.details[history.ANSWER_KEY]
    assert rated["question"] == "what is alpha?"
    assert [p["source"] for p in rated["passages"]] == ["a.txt", "c.pdf"]
    assert rated["options"]["search_type"] == "mmr"
    assert await database.feedback_owner(feedback_id) == "ada"
    assert await database.step_chat(answer["id"]) == (thread_id, "ada")
