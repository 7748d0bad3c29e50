"""Migrations: one numbered tree that creates exactly tables.py, up, down and reset."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from headwater.core.records import Batch
from headwater.exceptions import StoreError
from headwater.store import columns, migrate, schema, tables
from headwater.store.writer import open_writer

from .helpers import Rows

HEADWATER_TABLES = set(tables.metadata.tables)
RECORDED_TABLES = {"flow", "flow_run", "task_run", "state", "log", "event"}


def _tables(url: str) -> set[str]:
    engine = migrate.engine(url)
    try:
        return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def _execute(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = migrate.engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(sql))
            return [tuple(r) for r in result] if result.returns_rows else []
    finally:
        engine.dispose()


def test_columns_py_lists_the_columns_of_tables_py_in_order() -> None:
    assert set(tables.RECORDED) == RECORDED_TABLES
    for name, (table, cols) in tables.RECORDED.items():
        # The recorder writes a prefix of the columns; the server sets the rest, and the
        # recorder's inserts leave them NULL.
        assert tuple(c.name for c in table.columns)[: len(cols)] == cols, name
        assert all(c.nullable for c in list(table.columns)[len(cols) :]), name
    assert {"id", "created"} == columns.RUN_IMMUTABLE


def test_revisions_are_one_numbered_line_ending_at_head_revision() -> None:
    scripts = ScriptDirectory.from_config(migrate.config())
    assert scripts.get_heads() == [schema.HEAD_REVISION]
    revisions = list(reversed(list(scripts.walk_revisions())))
    for number, revision in enumerate(revisions, start=1):
        assert revision.revision == f"{number:04d}"
        expected_down = None if number == 1 else f"{number - 1:04d}"
        assert revision.down_revision == expected_down


@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based")
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_head_creates_exactly_the_tables_of_tables_py(database_url: str) -> None:
    migrate.upgrade(database_url)
    engine = migrate.engine(database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, tables.metadata) == []
            # alembic cannot compare expression and partial indexes: check them by name
            # and definition, as the database reports them.
            if conn.dialect.name == "sqlite":
                sql = "SELECT name, sql FROM sqlite_master WHERE type = 'index'"
            else:
                sql = (
                    "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
                )
            definitions = {name: text.lower() for name, text in conn.execute(sa.text(sql)) if text}
        assert (
            "coalesce(start_time, expected_start_time, created)"
            in (definitions["ix_flow_run_run_time"])
        )
        assert "where (task_run_id is null)" in definitions["ix_state_flow_run_id"].replace(
            "where task_run_id is null", "where (task_run_id is null)"
        )
    finally:
        engine.dispose()


def test_upgrade_downgrade_and_upgrade_again(database_url: str) -> None:
    assert migrate.current_revision(database_url) is None

    migrate.upgrade(database_url)
    assert migrate.current_revision(database_url) == schema.HEAD_REVISION
    assert _tables(database_url) == HEADWATER_TABLES

    migrate.downgrade(database_url, "base")
    assert migrate.current_revision(database_url) is None
    assert _tables(database_url) == set()

    migrate.upgrade(database_url)
    assert migrate.current_revision(database_url) == schema.HEAD_REVISION
    assert _tables(database_url) == HEADWATER_TABLES
    migrate.upgrade(database_url)  # at head already: nothing to do
    assert migrate.current_revision(database_url) == schema.HEAD_REVISION


def test_runs_recorded_at_revision_0001_survive_the_upgrade(database_url: str) -> None:
    migrate.upgrade(database_url, "0001")
    flow_id, run_id = "0" * 31 + "1", "0" * 31 + "2"
    stamp = "now()" if database_url.startswith("postgresql") else "1.0"
    _execute(database_url, f"INSERT INTO flow VALUES ('{flow_id}', 'etl', {stamp})")
    _execute(
        database_url,
        "INSERT INTO flow_run (id, flow_id, name, state_type, state_name, state_timestamp, "
        f"parameters, tags, run_count, created, updated) VALUES ('{run_id}', '{flow_id}', "
        f"'old-run', 'COMPLETED', 'Completed', {stamp}, '{{}}', '[]', 1, {stamp}, {stamp})",
    )

    migrate.upgrade(database_url)

    assert migrate.current_revision(database_url) == schema.HEAD_REVISION
    found = _execute(database_url, "SELECT name, work_pool_id, idempotency_key FROM flow_run")
    assert found == [("old-run", None, None)]


def test_reset_empties_the_store_and_leaves_other_tables_alone(database_url: str) -> None:
    rows = Rows()
    flow = rows.flow()
    run = rows.flow_run(flow[0])
    writer = open_writer(database_url)
    try:
        writer.write(Batch(flows={flow[0]: flow}, flow_runs={run[0]: run}))
    finally:
        writer.close()
    _execute(database_url, "CREATE TABLE not_headwater (x INTEGER)")
    _execute(database_url, "INSERT INTO not_headwater VALUES (7)")

    migrate.reset(database_url)

    assert migrate.current_revision(database_url) == schema.HEAD_REVISION
    assert _execute(database_url, "SELECT count(*) FROM flow_run") == [(0,)]
    assert _execute(database_url, "SELECT count(*) FROM flow") == [(0,)]
    assert _execute(database_url, "SELECT x FROM not_headwater") == [(7,)]


def test_a_failed_migration_changes_nothing(database_url: str) -> None:
    _execute(database_url, "CREATE TABLE log (x INTEGER)")  # in the way of revision 0001

    with pytest.raises(StoreError, match="nothing was changed"):
        migrate.upgrade(database_url)

    assert migrate.current_revision(database_url) is None
    assert _tables(database_url) == {"log"}


def test_an_unknown_revision_is_a_store_error(database_url: str) -> None:
    with pytest.raises(StoreError, match="0042"):
        migrate.upgrade(database_url, "0042")
