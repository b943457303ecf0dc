"""The chat-history schema: Chainlit's five tables (as its SQLAlchemy data layer queries
them) plus the project's own columns on `users` (password hash, admin flag).

Alembic migrations in `accounts/migrations/versions/` create and change it; these table
objects are what our own queries are written against. Ids and timestamps are text, as
Chainlit writes them.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# JSON in our own queries; the migrations store it as TEXT on SQLite (Chainlit's raw
# queries bind and read it as a string there) and as JSONB on PostgreSQL.
JSON_TEXT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TEXT_LIST = sa.Text().with_variant(postgresql.ARRAY(sa.Text()), "postgresql")

metadata = sa.MetaData()

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("identifier", sa.Text, nullable=False, unique=True),
    sa.Column("metadata", JSON_TEXT, nullable=False),
    sa.Column("createdAt", sa.Text),
    sa.Column("password_hash", sa.Text),
    sa.Column("is_admin", sa.Boolean, nullable=False, server_default=sa.false()),
)

threads = sa.Table(
    "threads",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("createdAt", sa.Text),
    sa.Column("name", sa.Text),
    sa.Column("userId", sa.Text, sa.ForeignKey("users.id", ondelete="CASCADE")),
    sa.Column("userIdentifier", sa.Text, index=True),
    sa.Column("tags", TEXT_LIST),
    sa.Column("metadata", JSON_TEXT),
)

steps = sa.Table(
    "steps",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column(
        "threadId",
        sa.Text,
        sa.ForeignKey("threads.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("parentId", sa.Text),
    sa.Column("streaming", sa.Boolean, nullable=False),
    sa.Column("waitForAnswer", sa.Boolean),
    sa.Column("isError", sa.Boolean),
    sa.Column("metadata", JSON_TEXT),
    sa.Column("tags", TEXT_LIST),
    sa.Column("input", sa.Text),
    sa.Column("output", sa.Text),
    sa.Column("createdAt", sa.Text),
    sa.Column("command", sa.Text),
    sa.Column("start", sa.Text),
    sa.Column("end", sa.Text),
    sa.Column("generation", JSON_TEXT),
    sa.Column("showInput", sa.Text),
    sa.Column("language", sa.Text),
    sa.Column("indent", sa.Integer),
    sa.Column("defaultOpen", sa.Boolean),
    sa.Column("autoCollapse", sa.Boolean),
    sa.Column("icon", sa.Text),
    sa.Column("modes", JSON_TEXT),
)

elements = sa.Table(
    "elements",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("threadId", sa.Text, sa.ForeignKey("threads.id", ondelete="CASCADE")),
    sa.Column("type", sa.Text),
    sa.Column("url", sa.Text),
    sa.Column("chainlitKey", sa.Text),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("display", sa.Text),
    sa.Column("objectKey", sa.Text),
    sa.Column("size", sa.Text),
    sa.Column("page", sa.Integer),
    sa.Column("language", sa.Text),
    sa.Column("forId", sa.Text),
    sa.Column("mime", sa.Text),
    sa.Column("props", JSON_TEXT),
)

feedbacks = sa.Table(
    "feedbacks",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("forId", sa.Text, nullable=False, index=True),
    sa.Column("threadId", sa.Text, sa.ForeignKey("threads.id", ondelete="CASCADE"), nullable=False),
    sa.Column("value", sa.Integer, nullable=False),
    sa.Column("comment", sa.Text),
)
