"""The history database's start-up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# What the app does, in its order: Chainlit sets INFO and imports the app's modules, the
# start-up hook sets up logging, then the history database is opened and migrated.
START_UP = """
import asyncio, logging, sys
logging.basicConfig(level=logging.INFO)
from accounts.database import Database
from core.logs import configure_logging
from core.settings import Settings

async def main() -> None:
    configure_logging()
    database = await Database.open(Settings(_env_file=None, database_url=sys.argv[1]))
    await database.close()

asyncio.run(main())
"""


def test_the_migrations_at_start_up_say_nothing_under_chainlits_info_level(
    tmp_path: Path,
) -> None:
    """Each app start printed Alembic's plugin set-up (on import) and its context."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}"
    done = subprocess.run(
        [sys.executable, "-c", START_UP, url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "alembic" not in done.stderr, done.stderr
    assert (tmp_path / "chat.db").exists()
