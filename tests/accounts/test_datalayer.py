"""Chainlit's data layer on our migrated schema, on SQLite and PostgreSQL: messages
really land in `steps`, chats list per user, a chat resumes with its memory, settings and
passages, and feedback is stored with what it rated."""

from __future__ import annotations

import asyncio
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

    await history.attach_citations(thread)
    elements = thread["elements"] or []
    assert [e["name"] for e in elements] == ["[1]", "[1]"]
    answer_ids = [s["id"] for s, _ in history.answers(steps)]
    assert [e["forId"] for e in elements] == answer_ids
    assert all(e["chainlitKey"] and e["threadId"] == thread_id for e in elements)
    assert all(
        e["url"] == f"/project/file/{e['chainlitKey']}?session_id=test-session" for e in elements
    )
    assert not chainlit_events.of("element")  # the browser would drop them: see the docstring


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


async def test_feedback_on_the_run_finds_the_answer_it_rated(
    database: Database, accounts: Accounts, chainlit_events: RecordingEmitter
) -> None:
    """The browser rates the answer's parent run step (what `@cl.on_message` opens), not
    the answer message itself: the record still carries the answer and its details."""
    layer = ChatDataLayer(database)
    thread_id = await chat(layer, await user(layer, accounts, "ada"))
    run = Step(name="on_message", type="run").to_dict()
    run["threadId"] = thread_id
    await layer.create_step(run)
    await say(layer, thread_id, "Adding 1 file", "assistant_message", parent_id=run["id"])
    await say(
        layer,
        thread_id,
        "alpha [1]",
        "assistant_message",
        parent_id=run["id"],
        metadata=history.answer_metadata("what is alpha?", OPTIONS, RETRIEVAL, [1]),
    )
    await layer.upsert_feedback(Feedback(forId=run["id"], value=1, threadId=thread_id))

    [record] = await database.feedback()
    assert (record.user, record.value, record.answer) == ("ada", 1, "alpha [1]")
    assert record.details[history.ANSWER_KEY]["question"] == "what is alpha?"


async def test_a_step_updated_at_once_after_it_is_sent_keeps_its_update(
    database: Database, accounts: Accounts, chainlit_events: RecordingEmitter
) -> None:
    """Chainlit writes steps in fire-and-forget tasks: `send()` then `update()` start two
    writes that must land in that order, or the step is stored as first sent (empty).
    Here the first write is held up on the way (as a busy SQLite makes it wait)."""
    layer = ChatDataLayer(database)
    thread_id = await chat(layer, await user(layer, accounts, "ada"))
    await say(layer, thread_id, "a question", "user_message")
    update_thread = layer.update_thread
    delays = [0.3]

    async def slow_first_update_thread(*args: Any, **kwargs: Any) -> None:
        if delays:
            await asyncio.sleep(delays.pop())
        await update_thread(*args, **kwargs)

    layer.update_thread = slow_first_update_thread  # type: ignore[method-assign]
    step = Step(name="Search the knowledge base", type="retrieval").to_dict()
    step["threadId"] = thread_id
    sent = asyncio.create_task(layer.create_step({**step, "output": ""}))
    updated = asyncio.create_task(layer.update_step({**step, "output": "Found 4 passages"}))
    await asyncio.gather(sent, updated)

    thread = await layer.get_thread(thread_id)
    assert thread is not None
    [stored] = [s for s in thread["steps"] if s["id"] == step["id"]]
    assert stored["output"] == "Found 4 passages"


async def test_many_chats_writing_at_once_lose_no_step(
    database: Database, accounts: Accounts, chainlit_events: RecordingEmitter
) -> None:
    """Many users answering at once (the load test): each answer's steps are written by
    fire-and-forget tasks that all want SQLite's one writer. Chainlit's data layer drops a
    write that fails (a warning in the log); none may fail for waiting its turn, even
    while another process holds the database for longer than SQLite's busy timeout."""
    layer = ChatDataLayer(database)
    owner = await user(layer, accounts, "ada")
    threads = [await chat(layer, owner) for _ in range(20)]
    steps = [
        {**Message(content=f"answer {n}", type="assistant_message").to_dict(), "threadId": t}
        for t in threads
        for n in range(5)
    ]
    # SQLite's lock held by another process, longer than its default busy timeout (5 s)
    held = 6.0 if database.dialect == "sqlite" else 0.0
    blocker = asyncio.create_task(_hold_the_database(database, seconds=held))
    await asyncio.sleep(0.2)
    await asyncio.gather(*(layer.create_step(s) for s in steps))
    await blocker

    async with database.engine.connect() as connection:
        stored = (await connection.exec_driver_sql("SELECT count(*) FROM steps")).scalar()
    assert stored == len(steps)


async def _hold_the_database(database: Database, seconds: float) -> None:
    """Another writer holding SQLite's write lock for `seconds` (nothing for 0)."""
    if not seconds:
        return
    async with database.engine.connect() as connection:
        await connection.exec_driver_sql("BEGIN IMMEDIATE")
        await asyncio.sleep(seconds)
        await connection.commit()


async def test_reads_do_not_wait_for_queued_writes(
    database: Database, accounts: Accounts, chainlit_events: RecordingEmitter
) -> None:
    """A sign-in looks its user up while answers are being written: on SQLite the lookup
    skips the write queue (`Database.turn`), and the write-ahead log lets it read while a
    write is open, so sign-ins did not time out behind 50 users' answers."""
    layer = ChatDataLayer(database)
    await user(layer, accounts, "ada")
    async with database.turn(), database.engine.connect() as writer:
        if database.dialect == "sqlite":
            await writer.exec_driver_sql("BEGIN IMMEDIATE")
            mode = await writer.exec_driver_sql("PRAGMA journal_mode")
            assert mode.scalar() == "wal"
        await writer.exec_driver_sql("UPDATE users SET metadata = '{}' WHERE identifier = 'ada'")
        async with asyncio.timeout(5):
            found = await layer.get_user("ada")
        await writer.rollback()
    assert found is not None and found.identifier == "ada"
