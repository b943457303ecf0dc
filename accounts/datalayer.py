"""Chainlit's SQLAlchemy data layer on the project's database, with the two fixes it needs.

- Lists and dicts are serialized to JSON before binding: SQLite cannot bind them
  ("type 'list' is not supported"), and asyncpg wants JSONB values as text too (a step
  with `modes` fails on both otherwise, Chainlit #2750).
- Writes of one step land in the order they were started. Chainlit starts them as
  fire-and-forget tasks (`send()`, then `update()` with the output); when the first is
  held up (SQLite busy with another write), the empty first write used to land last and
  erase the step's output.
- It shares the `Database`'s engine, so the app holds one pool and migrations and
  Chainlit's queries see the same database; on SQLite its writes take turns with the
  `Database`'s (`Database.turn`), or under load they failed and were dropped.
"""

from __future__ import annotations

import json
from typing import Any

from chainlit.data.sql_alchemy import SQLAlchemyDataLayer

from accounts.database import Database
from core.keyed_locks import KeyedLocks


class ChatDataLayer(SQLAlchemyDataLayer):
    """`SQLAlchemyDataLayer` bound to `database` (no storage client: cited passages are
    kept in the answer's metadata and re-rendered on resume instead)."""

    def __init__(self, database: Database) -> None:
        # The parent builds an engine from a URL; nothing connects until a query runs,
        # and ours replaces it at once.
        super().__init__(conninfo="sqlite+aiosqlite://")
        self.engine = database.engine
        self.async_session = database.sessions
        self._database = database
        self._lists_as_json = database.dialect == "sqlite"
        # One lock per step being written: its waiters are woken first come, first
        # served, and tasks start in the order they were created.
        self._step_locks: KeyedLocks[str] = KeyedLocks()

    async def create_step(self, step_dict: Any) -> None:
        async with self._step_locks(str(step_dict.get("id"))):
            await super().create_step(step_dict)

    def _bindable(self, value: Any) -> Any:
        if isinstance(value, dict) or (isinstance(value, list) and self._lists_as_json):
            return json.dumps(value)
        return value

    async def execute_sql(
        self, query: str, parameters: dict[str, Any]
    ) -> list[dict[str, Any]] | int | None:
        bound = {key: self._bindable(value) for key, value in parameters.items()}
        if query.lstrip().upper().startswith("SELECT"):  # reads never wait for writers
            return await super().execute_sql(query, bound)
        async with self._database.turn():  # SQLite: one write at a time (`Database.turn`)
            return await super().execute_sql(query, bound)
