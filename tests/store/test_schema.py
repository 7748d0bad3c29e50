"""The schema check on opening a store: created at head, cheap when current, safe in parallel."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from headwater.exceptions import StoreError
from headwater.store import migrate, schema
from headwater.store.writer import open_writer, sqlite_path

from .helpers import Store


def _set_revision(url: str, revision: str) -> None:
    engine = migrate.engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = :v"), {"v": revision})
    finally:
        engine.dispose()


def _table_names(url: str) -> set[str]:
    engine = migrate.engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_a_fresh_store_is_created_at_head_on_first_open(store: Store) -> None:
    assert migrate.current_revision(store.url) is None

    store.writer.open()

    assert migrate.current_revision(store.url) == schema.HEAD_REVISION
    assert {"flow", "flow_run", "task_run", "state", "log"} <= _table_names(store.url)
    if store.engine.dialect.name == "sqlite":
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_opening_a_store_at_head_imports_neither_alembic_nor_sqlalchemy(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'headwater.db'}"
    schema.ensure_schema(url)
    script = textwrap.dedent(
        f"""
        import sys, time, uuid
        from pathlib import Path
        from headwater.core.records import Batch
        from headwater.store.sqlite_writer import SQLiteWriter

        writer = SQLiteWriter(Path({str(tmp_path / "headwater.db")!r}))
        writer.open()
        flow = (uuid.uuid4().hex, "hello", time.time())
        writer.write(Batch(flows={{flow[0]: flow}}))
        writer.active_runs("host")
        writer.mark_crashed([uuid.uuid4()], "gone", time.time())
        writer.close()
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("alembic", "sqlalchemy")))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_schema_is_read_once_per_process_and_a_later_revision_is_refused(
    database_url: str,
) -> None:
    schema.ensure_schema(database_url)
    later = f"{int(schema.HEAD_REVISION) + 1:04d}"
    _set_revision(database_url, later)

    schema.ensure_schema(database_url)  # remembered as current: no second read

    schema.forget(database_url)
    with pytest.raises(StoreError) as refused:
        schema.ensure_schema(database_url)
    message = str(refused.value)
    assert f"'{later}'" in message
    assert f"'{schema.HEAD_REVISION}'" in message
    assert "Upgrade Headwater" in message
    with pytest.raises(StoreError, match="Upgrade Headwater"):
        migrate.upgrade(database_url)
    writer = open_writer(database_url)
    with pytest.raises(StoreError, match="Upgrade Headwater"):
        writer.open()
    assert migrate.current_revision(database_url) == later


def test_a_database_of_another_alembic_application_is_refused(database_url: str) -> None:
    schema.ensure_schema(database_url)
    _set_revision(database_url, "ae1027a6acf")
    schema.forget(database_url)

    with pytest.raises(StoreError, match="not a Headwater schema revision"):
        schema.ensure_schema(database_url)


def test_a_store_that_is_behind_is_upgraded_on_open(database_url: str) -> None:
    schema.ensure_schema(database_url)
    migrate.downgrade(database_url, "base")
    assert "flow_run" not in _table_names(database_url)

    writer = open_writer(database_url)
    try:
        writer.open()
    finally:
        writer.close()

    assert migrate.current_revision(database_url) == schema.HEAD_REVISION
    assert "flow_run" in _table_names(database_url)


_OPEN_IN_PARALLEL = """
import sys, time, uuid
from pathlib import Path
from headwater.core.records import Batch
from headwater.store.writer import open_writer

url, ready, go, name = sys.argv[1:]
writer = open_writer(url)
Path(ready).touch()
while not Path(go).exists():
    time.sleep(0.001)
writer.open()
flow = (uuid.uuid4().hex, name, time.time())
writer.write(Batch(flows={flow[0]: flow}))
writer.close()
"""


def test_concurrent_first_opens_of_a_fresh_store_all_succeed(
    database_url: str, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    processes = [
        subprocess.Popen(
            [
                *(sys.executable, "-c", _OPEN_IN_PARALLEL, database_url),
                *(str(tmp_path / f"ready-{i}"), str(go), f"flow-{i}"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    try:
        deadline = time.monotonic() + 60
        while not all((tmp_path / f"ready-{i}").exists() for i in range(4)):
            assert time.monotonic() < deadline, "the processes did not start"
            assert all(p.poll() is None for p in processes), processes[0].communicate()
            time.sleep(0.01)
        go.touch()
        results = [p.communicate(timeout=60) for p in processes]
    finally:
        for p in processes:
            p.kill()
    assert [p.returncode for p in processes] == [0] * 4, [err for _, err in results]

    assert migrate.current_revision(database_url) == schema.HEAD_REVISION
    engine = migrate.engine(database_url)
    try:
        with engine.connect() as conn:
            names = conn.execute(sa.text("SELECT name FROM flow ORDER BY name")).scalars()
            assert list(names) == [f"flow-{i}" for i in range(4)]
    finally:
        engine.dispose()
    path = sqlite_path(database_url)
    if path is not None:
        assert os.path.exists(f"{path}.migrate.lock")


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "headwater.db"
    path.write_text("not a database, " * 100)
    with pytest.raises(StoreError, match="Is it a Headwater database"):
        schema.ensure_schema(f"sqlite:///{path}")


def test_messages_never_show_the_database_password() -> None:
    url = "postgresql+psycopg://hw:s3cret@db.example.com:5432/headwater"
    assert schema.display_url(url) == "postgresql+psycopg://hw:***@db.example.com:5432/headwater"
    with pytest.raises(StoreError) as refused:
        schema.check_revision(url, "0999")
    assert "s3cret" not in str(refused.value)


def test_unsupported_database_url_is_a_clear_error() -> None:
    import pytest

    from headwater.exceptions import StoreError
    from headwater.store.engine import create_engine
    from headwater.store.writer import open_writer

    for make in (open_writer, create_engine):
        with pytest.raises(StoreError, match=r"Unsupported database URL 'db:3306/x'.*SQLite"):
            make("mysql://user:secret@db:3306/x")
