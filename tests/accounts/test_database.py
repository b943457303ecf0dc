"""The history database's start-up."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from accounts.database import Database
from core.logs import configure_logging
from tests.conftest import make_settings


async def test_the_migrations_at_start_up_say_nothing_under_chainlits_info_level(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Chainlit logs at INFO: each app start printed Alembic's plugin set-up and context."""
    configure_logging()
    caplog.set_level(logging.INFO)  # what Chainlit sets on the root logger
    url = f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}"
    database = await Database.open(make_settings(tmp_path, database_url=url))
    await database.close()
    assert [r.getMessage() for r in caplog.records if r.name.startswith("alembic")] == []
