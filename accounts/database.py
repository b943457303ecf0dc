"""The one door to SQL: the engine, migrations on start, and every query the project
itself makes (users, ownership checks, feedback for evaluation, removing a user).

Chainlit's data layer (`accounts.datalayer`) runs its own queries on the same engine.

Example::

    database = await Database.open(settings)      # migrates to the newest schema
    await database.add_user("ada", password_hash, admin=True)
    await database.close()
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_engine

from accounts.schema import feedbacks, steps, threads, users
from core.settings import Settings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_SECONDS = 30.0


class UserExists(ValueError):
    """A user with that name already exists."""


@dataclass(frozen=True)
class Account:
    name: str
    admin: bool
    created_at: str | None
    chats: int


@dataclass(frozen=True)
class FeedbackRecord:
    """One rating with what it rated: the answer's step metadata holds the question, the
    passages shown and the search settings (see `ui.history`)."""

    user: str
    value: int
    comment: str | None
    answer: str
    details: dict[str, Any]


def _upgrade(connection: sa.Connection) -> None:
    # Imported here: importing Alembic logs its plugin set-up at INFO, and the app's
    # modules are imported (under Chainlit's INFO level) before its logging is set up.
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _now() -> str:
    return datetime.now(UTC).replace(tzinfo=None).isoformat() + "Z"


def _json(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        value = json.loads(value)
    return value if isinstance(value, dict) else {}


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    """Write-ahead logging: readers never wait for the writer, and a commit is one
    append without an fsync (`synchronous=NORMAL`: a killed app loses nothing; a power
    cut may lose the last commits). With the default journal every commit waited for the
    disk, and 50 users answering at once wrote faster than SQLite could commit."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Database:
    """The chat-history database (SQLite through aiosqlite, or PostgreSQL through asyncpg)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)
        # SQLite has one writer. Writers of this process queue here, in order, instead of
        # on SQLite's lock, whose busy handler polls (sleeping up to 100 ms a turn) while
        # each waiter holds a pooled connection: with 50 users answering at once the pool
        # ran dry and writes failed, which Chainlit's data layer drops with a warning.
        self._turn = asyncio.Lock() if self.dialect == "sqlite" else None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @classmethod
    async def open(cls, settings: Settings) -> Database:
        """Connect and migrate to the newest schema (creating a SQLite file's folder)."""
        url = sa.make_url(settings.database_url.get_secret_value())
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        sqlite = url.get_backend_name() == "sqlite"
        # Another process (the accounts CLI) may hold SQLite's lock for a while: wait for
        # it (the default gives up after 5 s).
        options = {"connect_args": {"timeout": SQLITE_BUSY_SECONDS}} if sqlite else {}
        engine = _create_engine(url, pool_pre_ping=True, **options)
        if sqlite:
            sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        database = cls(engine)
        try:
            await database.migrate()
        except BaseException:
            await database.close()
            raise
        return database

    async def migrate(self) -> None:
        async with self.engine.begin() as connection:
            await connection.run_sync(_upgrade)

    async def close(self) -> None:
        await self.engine.dispose()

    async def ping(self) -> None:
        """One trivial query (for health checks); raises when the database is down."""
        async with self.engine.connect() as connection:
            await connection.execute(sa.text("SELECT 1"))

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """This process's turn to write to SQLite (one at a time, first come first served);
        nothing to wait for on PostgreSQL. Not reentrant."""
        if self._turn is None:
            yield
            return
        async with self._turn:
            yield

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        async with self.turn(), self.engine.begin() as connection:
            yield connection

    # Users
    async def add_user(self, name: str, password_hash: str, *, admin: bool) -> None:
        row = {
            "id": str(uuid.uuid4()),
            "identifier": name,
            "metadata": {},
            "createdAt": _now(),
            "password_hash": password_hash,
            "is_admin": admin,
        }
        try:
            async with self._transaction() as connection:
                await connection.execute(users.insert().values(**row))
        except IntegrityError:
            raise UserExists(f"a user named {name!r} already exists") from None

    async def set_password(self, name: str, password_hash: str) -> bool:
        async with self._transaction() as connection:
            result = await connection.execute(
                users.update().where(users.c.identifier == name).values(password_hash=password_hash)
            )
        return result.rowcount > 0

    async def credentials(self, name: str) -> tuple[str | None, bool] | None:
        """`(password_hash, is_admin)` of a user, or None when there is no such user."""
        async with self.engine.connect() as connection:
            row = (
                await connection.execute(
                    sa.select(users.c.password_hash, users.c.is_admin).where(
                        users.c.identifier == name
                    )
                )
            ).first()
        return None if row is None else (row.password_hash, bool(row.is_admin))

    async def is_admin(self, name: str) -> bool:
        found = await self.credentials(name)
        return found is not None and found[1]

    async def ensure_user(self, name: str) -> None:
        """Create a user without a password (header sign-in), unless it exists."""
        if await self.credentials(name) is None:
            try:
                async with self._transaction() as connection:
                    await connection.execute(
                        users.insert().values(
                            id=str(uuid.uuid4()), identifier=name, metadata={}, createdAt=_now()
                        )
                    )
            except IntegrityError:  # created meanwhile by another request
                pass

    async def accounts(self) -> list[Account]:
        chats = (
            sa.select(sa.func.count())
            .where(threads.c.userIdentifier == users.c.identifier)
            .scalar_subquery()
        )
        query = sa.select(
            users.c.identifier, users.c.is_admin, users.c.createdAt, chats.label("chats")
        ).order_by(users.c.identifier)
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [Account(r.identifier, bool(r.is_admin), r.createdAt, int(r.chats)) for r in rows]

    async def remove_user(
        self, name: str, *, before_commit: Callable[[], Awaitable[object]] | None = None
    ) -> bool:
        """Delete a user with their chats, steps, elements and feedback in one transaction.

        `before_commit` runs inside it (removing their documents from the knowledge base):
        if it raises, nothing in SQL changes, and running again finishes the job.
        """
        async with self._transaction() as connection:
            exists = await connection.execute(
                sa.select(users.c.id).where(users.c.identifier == name)
            )
            if exists.first() is None:
                return False
            owned = sa.select(threads.c.id).where(threads.c.userIdentifier == name)
            for table in (feedbacks, steps, sa.table("elements", sa.column("threadId"))):
                await connection.execute(sa.delete(table).where(table.c.threadId.in_(owned)))
            await connection.execute(threads.delete().where(threads.c.userIdentifier == name))
            await connection.execute(users.delete().where(users.c.identifier == name))
            if before_commit is not None:
                await before_commit()
        return True

    # Ownership (for the routes Chainlit leaves unchecked)
    async def step_chat(self, step_id: str) -> tuple[str, str | None] | None:
        """`(chat id, its owner)` of the chat a step (a message) belongs to."""
        query = (
            sa.select(threads.c.id, threads.c.userIdentifier)
            .join(steps, steps.c.threadId == threads.c.id)
            .where(steps.c.id == step_id)
        )
        async with self.engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else (row[0], row[1])

    async def feedback_owner(self, feedback_id: str) -> str | None:
        """Who owns the chat a stored feedback belongs to (None: no such feedback)."""
        query = (
            sa.select(threads.c.userIdentifier)
            .join(feedbacks, feedbacks.c.threadId == threads.c.id)
            .where(feedbacks.c.id == feedback_id)
        )
        async with self.engine.connect() as connection:
            return (await connection.execute(query)).scalar()

    async def feedback(self) -> list[FeedbackRecord]:
        """Every rating with the rated answer and its details, oldest chat first.

        The browser rates an answer's parent run step (the one `@cl.on_message` opens),
        so the answer is the rated step itself or, failing that, the last of the run's
        assistant messages that carries details (an upload report before it has none).
        """
        answer = steps.alias("answer")
        query = (
            sa.select(
                feedbacks.c.id,
                threads.c.userIdentifier,
                feedbacks.c.value,
                feedbacks.c.comment,
                answer.c.output,
                answer.c["metadata"],
            )
            .join(
                answer,
                sa.and_(
                    sa.or_(
                        answer.c.id == feedbacks.c.forId, answer.c.parentId == feedbacks.c.forId
                    ),
                    answer.c.type == "assistant_message",
                ),
            )
            .join(threads, threads.c.id == answer.c.threadId)  # the chat it is in, not a claim
            .order_by(threads.c.createdAt, answer.c.createdAt)
        )
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        records: dict[str, FeedbackRecord] = {}
        for feedback_id, user, value, comment, output, metadata in rows:
            details = _json(metadata)
            if details or feedback_id not in records:
                records[feedback_id] = FeedbackRecord(
                    user, int(value), comment, output or "", details
                )
        return list(records.values())
