"""The store's alembic migration tree: one tree for SQLite and PostgreSQL.

Headwater runs it through `headwater.store.migrate`; `alembic.ini` here is for
developers writing a new revision (see that file).
"""
