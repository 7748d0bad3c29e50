"""Persistence: tables, writers, migrations and queries.

Nothing here is imported by `import headwater`: the SDK reaches the store only
when a run starts, and the embedded write path uses the stdlib `sqlite3`
writer so a short script never pays for SQLAlchemy.
"""
