"""Transactions: on_commit / on_rollback task hooks, staged results, keyed transactions."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from headwater import Transaction, flow, task
from headwater.cache_policies import INPUTS
from headwater.transactions import get_transaction, transaction

from .conftest import Store


def _records(directory: Path) -> list[Path]:
    if not directory.exists():
        return []
    return [p for p in directory.iterdir() if not p.name.startswith(".")]


def test_commit_hooks_run_when_the_block_succeeds(store: Store) -> None:
    events: list[str] = []

    @task
    def write(name: str) -> str:
        events.append(f"write {name}")
        return name

    @write.on_commit
    def announce(txn: Transaction) -> None:
        events.append(f"commit {txn.key}")

    @write.on_rollback
    def undo(txn: Transaction) -> None:
        events.append("rollback")

    @flow
    def pipeline() -> bool:
        with transaction(key=None) as txn:
            write("a")
            write("b")
            assert get_transaction() is txn
            events.append("end of block")
        return txn.is_committed()

    assert pipeline() is True
    assert events == ["write a", "write b", "end of block", "commit None", "commit None"]


def test_rollback_hooks_run_latest_first_when_an_exception_leaves_the_block(
    store: Store,
) -> None:
    events: list[str] = []

    def undo_file(txn: Transaction) -> None:
        events.append(f"remove {txn.get('path')}")

    def undo_table(txn: Transaction) -> None:
        events.append("drop table")

    @task(on_rollback=[undo_file])
    def write_file(path: str) -> None:
        events.append("wrote file")

    @task(on_rollback=[undo_table])
    def create_table() -> None:
        events.append("created table")

    @task
    def check() -> None:
        raise ValueError("validation failed")

    @flow
    def pipeline() -> str:
        try:
            with transaction() as txn:
                txn.set("path", "out.txt")
                write_file("out.txt")
                create_table()
                check()
        except ValueError as exc:
            return f"{txn.is_rolled_back()} {exc}"
        return "no error"

    assert pipeline() == "True validation failed"
    assert events == ["wrote file", "created table", "drop table", "remove out.txt"]


def test_a_rolled_back_transaction_does_not_persist_its_results(
    store: Store, tmp_path: Path
) -> None:
    calls: list[int] = []

    @task(cache_policy=INPUTS, result_storage=tmp_path / "r")
    def compute(x: int) -> int:
        calls.append(x)
        return x

    with pytest.raises(RuntimeError), transaction():
        compute(1)
        raise RuntimeError("abort")
    assert _records(tmp_path / "r") == []

    with transaction():
        compute(1)
        assert _records(tmp_path / "r") == []  # written when the transaction commits
    assert len(_records(tmp_path / "r")) == 1
    assert compute(1, return_state=True).name == "Cached"
    assert calls == [1, 1]


def test_on_commit_outside_a_transaction_runs_when_the_task_completes(store: Store) -> None:
    events: list[str] = []

    @task(on_commit=[lambda txn: events.append("committed")])
    def step() -> None:
        events.append("ran")

    @task(on_commit=[lambda txn: events.append("never")])
    def failing() -> None:
        raise ValueError("no")

    step()
    failing(return_state=True)
    assert events == ["ran", "committed"]


def test_a_keyed_transaction_is_committed_once(store: Store, tmp_path: Path) -> None:
    loads: list[str] = []

    @task
    def load(day: str) -> None:
        loads.append(day)

    @flow
    def daily(day: str) -> bool:
        with transaction(key=f"load-{day}", store=tmp_path / "txn") as txn:
            if txn.is_committed():
                return False
            load(day)
            txn.set("rows", 10)
        return True

    assert daily("2024-01-01") is True
    assert daily("2024-01-01") is False
    assert daily("2024-01-02") is True
    assert loads == ["2024-01-01", "2024-01-02"]
    with transaction(key="load-2024-01-01", store=tmp_path / "txn") as txn:
        assert txn.is_committed() and txn.get("rows") == 10
    with transaction(key="load-2024-01-01", store=tmp_path / "txn", overwrite=True) as txn:
        assert txn.is_active()


def test_nested_transactions_commit_with_the_outermost(store: Store) -> None:
    events: list[str] = []

    @task(on_commit=[lambda txn: events.append("commit")])
    def inner_step() -> None:
        events.append("inner ran")

    @inner_step.on_rollback
    def undo(txn: Any) -> None:
        events.append("rollback inner")

    with pytest.raises(KeyError), transaction():
        with transaction():
            inner_step()
        events.append("inner block done")
        raise KeyError("outer fails")
    assert events == ["inner ran", "inner block done", "rollback inner"]


def test_async_transaction(store: Store) -> None:
    events: list[str] = []

    @task(on_rollback=[lambda txn: events.append("rolled back")])
    async def step() -> None:
        events.append("ran")

    async def main() -> None:
        async with transaction():
            await step()
            raise LookupError("stop")

    with pytest.raises(LookupError):
        asyncio.run(main())
    assert events == ["ran", "rolled back"]


def test_a_failing_hook_is_logged_and_the_others_still_run(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[str] = []

    def broken(txn: Transaction) -> None:
        raise OSError("hook broke")

    @task(on_commit=[broken, lambda txn: events.append("second hook")])
    def step() -> None: ...

    with transaction():
        step()
    assert events == ["second hook"]
    assert "on_commit hook 'broken' raised an exception" in caplog.text
