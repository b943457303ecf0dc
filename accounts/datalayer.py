"""Chainlit's SQLAlchemy data layer on the project's database, with the two fixes it needs.

- Lists and dicts are serialized to JSON before binding: SQLite cannot bind them
  ("type 'list' is not supported"), and asyncpg wants JSONB values as text too (a step
  with `modes` fails on both otherwise, Chainlit #2750).
- It shares the `Database`'s engine, so the app holds one pool and migrations and
  Chainlit's queries see the same database.
"""

from __future__ import annotations

import json
from typing import Any

from chainlit.data.sql_alchemy import SQLAlchemyDataLayer

from accounts.database import Database


class ChatDataLayer(SQLAlchemyDataLayer):
    """`SQLAlchemyDataLayer` bound to `database` (no storage client: cited passages are
    kept in the answer's metadata and re-rendered on resume instead)."""

    def __init__(self, database: Database) -> None:
        # The parent builds an engine from a URL; nothing connects until a query runs,
        # and ours replaces it at once.
        super().__init__(conninfo="sqlite+aiosqlite://")
        self.engine = database.engine
        self.async_session = database.sessions
        self._lists_as_json = database.dialect == "sqlite"

    def _bindable(self, value: Any) -> Any:
        if isinstance(value, dict) or (isinstance(value, list) and self._lists_as_json):
            return json.dumps(value)
        return value

    async def execute_sql(
        self, query: str, parameters: dict[str, Any]
    ) -> list[dict[str, Any]] | int | None:
        bound = {key: self._bindable(value) for key, value in parameters.items()}
        return await super().execute_sql(query, bound)
