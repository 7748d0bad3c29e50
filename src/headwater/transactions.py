"""Transactions: a group of task runs that commit together, or roll back together.

    from headwater import flow, task
    from headwater.transactions import transaction

    @task
    def write_file(path: str, text: str) -> None: ...

    @write_file.on_rollback
    def remove_file(txn) -> None:
        os.remove(txn.get("path"))

    @flow
    def pipeline() -> None:
        with transaction(key="load-2024-01-01") as txn:
            txn.set("path", "out.txt")
            write_file("out.txt", "hello")
            check_file("out.txt")   # raises: remove_file runs, then the error propagates

When an exception leaves the block, the `on_rollback` hooks of the tasks that
completed inside it run (latest first) and the results they would have
persisted are dropped; otherwise their results are written and their
`on_commit` hooks run. Hooks are called as `hook(txn)`.

A transaction with a `key` writes a record under that key (in the default
result storage, or `store=`) when it commits; a later transaction with the
same key starts out committed (`txn.is_committed()`), with the values `set`
on it, so a re-run can skip work that already happened.
"""

from __future__ import annotations

import contextvars
import enum
import logging
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from headwater.results import ResultStorage

__all__ = ["Transaction", "TransactionState", "get_transaction", "transaction"]

logger = logging.getLogger(__name__)

_current: contextvars.ContextVar[Transaction | None] = contextvars.ContextVar(
    "headwater_transaction", default=None
)
_MISSING: Any = object()

Hook = Callable[["Transaction"], Any]


class TransactionState(enum.StrEnum):
    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    COMMITTED = "COMMITTED"
    ROLLED_BACK = "ROLLED_BACK"


class Transaction:
    """A transaction: use `transaction(...)` to make one."""

    def __init__(
        self,
        key: str | None = None,
        store: ResultStorage | str | Path | None = None,
        overwrite: bool = False,
        write_on_commit: bool = True,
    ) -> None:
        if key is not None and (not isinstance(key, str) or not key):
            raise ValueError(f"A transaction key must be a non-empty string, got {key!r}.")
        self.key = key
        self.overwrite = overwrite
        self.write_on_commit = write_on_commit
        self.state = TransactionState.PENDING
        self.parent: Transaction | None = None
        self._store_spec = store
        self._store: ResultStorage | None = None
        self._values: dict[str, Any] = {}
        self._staged: list[tuple[ResultStorage, str, bytes]] = []
        #: (on_commit hooks, on_rollback hooks) of each task run that completed here
        self._tasks: list[tuple[list[Hook], list[Hook]]] = []
        self._token: contextvars.Token[Transaction | None] | None = None

    # -- state --------------------------------------------------------------------------
    def is_committed(self) -> bool:
        return self.state is TransactionState.COMMITTED

    def is_rolled_back(self) -> bool:
        return self.state is TransactionState.ROLLED_BACK

    def is_active(self) -> bool:
        return self.state is TransactionState.ACTIVE

    @property
    def store(self) -> ResultStorage:
        if self._store is None:
            from headwater.results import get_storage

            self._store = get_storage(self._store_spec)
        return self._store

    # -- values -------------------------------------------------------------------------
    def set(self, name: str, value: Any) -> None:
        """Keep a value with the transaction (written with its record when it has a key)."""
        self._values[name] = value

    def get(self, name: str, default: Any = _MISSING) -> Any:
        """A value `set` on this transaction or an enclosing one."""
        if name in self._values:
            return self._values[name]
        if self.parent is not None:
            return self.parent.get(name, default)
        if default is _MISSING:
            raise KeyError(
                f"Transaction {self.key or '(no key)'} has no value {name!r}; "
                "set it with txn.set(name, value) or pass a default."
            )
        return default

    # -- what the task engine adds ---------------------------------------------------------
    def stage(self, storage: ResultStorage, key: str, data: bytes) -> None:
        """A result record written when the transaction commits."""
        self._staged.append((storage, key, data))

    def add_task(self, on_commit: list[Hook], on_rollback: list[Hook]) -> None:
        self._tasks.append((on_commit, on_rollback))

    # -- entering and leaving ---------------------------------------------------------
    def begin(self) -> None:
        self.parent = _current.get()
        self._token = _current.set(self)
        if self.key is not None and not self.overwrite:
            record = self._read_record()
            if record is not None:
                self._values.update(record)
                self.state = TransactionState.COMMITTED
                return
        self.state = TransactionState.ACTIVE

    def _read_record(self) -> dict[str, Any] | None:
        from headwater.results import read_record

        assert self.key is not None
        try:
            record = read_record(self.store, self.key)
        except Exception as exc:
            logger.warning("Transaction record %r cannot be read: %s", self.key, exc)
            return None
        if record is None:
            return None
        return dict(record.value) if isinstance(record.value, dict) else {}

    def commit(self) -> None:
        """Write staged results and the transaction's record, then call `on_commit` hooks.

        Inside another transaction, everything is handed to the outer one and
        happens when it commits.
        """
        parent = self.parent
        if parent is not None:
            parent._staged.extend(self._staged)
            parent._tasks.extend(self._tasks)
            if self.key is not None and self.write_on_commit and not self.is_committed():
                parent._staged.append((self.store, self.key, self._record()))
        else:
            for storage, key, data in self._staged:
                storage.write(key, data)
            if self.key is not None and self.write_on_commit and not self.is_committed():
                self.store.write(self.key, self._record())
            for on_commit, _ in self._tasks:
                _call(on_commit, self, "on_commit")
        self._staged.clear()
        self.state = TransactionState.COMMITTED

    def rollback(self) -> None:
        """Drop staged results and call `on_rollback` hooks, latest task first."""
        self._staged.clear()
        for _, on_rollback in reversed(self._tasks):
            _call(on_rollback, self, "on_rollback")
        self._tasks.clear()
        self.state = TransactionState.ROLLED_BACK

    def _record(self) -> bytes:
        from headwater.core.clock import now
        from headwater.results import ResultMetadata, encode_record
        from headwater.serializers import PickleSerializer

        assert self.key is not None
        serializer = PickleSerializer()
        metadata = ResultMetadata(storage_key=self.key, serializer=serializer.type, created=now())
        return encode_record(metadata, serializer.dumps(self._values))

    def end(self, failed: bool) -> None:
        try:
            if failed:
                self.rollback()
            else:
                self.commit()
        finally:
            if self._token is not None:
                _current.reset(self._token)
                self._token = None

    def __enter__(self) -> Transaction:
        self.begin()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.end(exc_type is not None)

    async def __aenter__(self) -> Transaction:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, traceback)

    def __repr__(self) -> str:
        return f"Transaction(key={self.key!r}, state={self.state.value})"


def _call(hooks: list[Hook], transaction: Transaction, kind: str) -> None:
    for hook in hooks:
        try:
            hook(transaction)
        except Exception:
            logger.exception(
                "%s hook %r raised an exception.", kind, getattr(hook, "__name__", hook)
            )


def transaction(
    key: str | None = None,
    *,
    store: ResultStorage | str | Path | None = None,
    overwrite: bool = False,
    write_on_commit: bool = True,
) -> Transaction:
    """A transaction, to use as `with transaction(...) as txn:` (or `async with`).

    Args:
        key: when given, the transaction writes a record under this key when it
            commits, and a transaction with a key already written starts committed.
        store: where that record goes (a directory, an fsspec URL or a
            `ResultStorage`); the default result storage when None.
        overwrite: start active even when a record exists for `key`.
        write_on_commit: write the transaction's record on commit.
    """
    return Transaction(key, store=store, overwrite=overwrite, write_on_commit=write_on_commit)


def get_transaction() -> Transaction | None:
    """The innermost transaction open in this context, or None."""
    return _current.get()


def after_task_completed(on_commit: list[Hook], on_rollback: list[Hook]) -> None:
    """A task run completed: its hooks join the open transaction, or commit at once."""
    current = _current.get()
    if current is not None:
        current.add_task(on_commit, on_rollback)
    elif on_commit:
        # Outside any transaction a task run is its own transaction, committed now.
        own = Transaction()
        own.state = TransactionState.COMMITTED
        _call(on_commit, own, "on_commit")
