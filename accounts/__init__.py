"""Users, password hashing and the SQL chat history (Chainlit's data layer on our own
migrated schema); `python -m accounts` manages users.

`accounts.database` is the one door to SQL: nothing outside this package imports
SQLAlchemy or Alembic.
"""
