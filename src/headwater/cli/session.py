"""What every store command does around its queries: open the store (or, with
HEADWATER_API_URL set, a server), detect crashed runs, and turn any error a user
can fix into one red line on stderr.

Commands read through a `Reader`: the store's queries on one connection in
embedded mode, the REST API in remote mode. Both return the same row
dataclasses (`headwater.store.queries`), so each command renders them once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar

from headwater.exceptions import HeadwaterError

if TYPE_CHECKING:
    import sqlalchemy as sa

    from headwater.core.states import StateType
    from headwater.store.queries import FlowRunRow, LogRow, StateRow, TaskRunRow

P = ParamSpec("P")
R = TypeVar("R")


@dataclasses.dataclass(frozen=True)
class Store:
    """The store a command reads: its URL and a SQLAlchemy engine on it."""

    url: str
    engine: sa.Engine

    def detect_crashed_runs(self) -> int:
        """Mark runs of this host whose process died as Crashed; return how many.

        Uses the run engine's crash detection when this Headwater has it.
        """
        try:
            from headwater.engine.crash import detect_crashed_runs
        except ImportError:
            return 0
        from headwater.store.writer import open_writer

        writer = open_writer(self.url)
        try:
            return detect_crashed_runs(writer)
        finally:
            writer.close()


@contextlib.contextmanager
def open_store() -> Iterator[Store]:
    """The configured store, at the current schema, with crashed runs marked.

    Crash detection runs first so that a run whose process was killed shows as
    Crashed rather than Running forever.
    """
    from headwater.settings import get_settings
    from headwater.store.engine import create_engine
    from headwater.store.schema import ensure_schema

    url = get_settings().effective_database_url
    ensure_schema(url)
    engine = create_engine(url)
    store = Store(url, engine)
    try:
        try:
            store.detect_crashed_runs()
        except Exception as exc:
            # Housekeeping must not stop anyone reading the store: these commands
            # are what people reach for when something is already broken.
            from headwater.cli.output import note

            note(
                f"Crash detection failed ({type(exc).__name__}: {exc}); runs whose process "
                "was killed may still show as Running."
            )
        yield store
    finally:
        engine.dispose()


class Reader(Protocol):
    """What the run commands read; the names and arguments of `headwater.store.queries`."""

    def list_flow_runs(
        self,
        *,
        flow_name: str | None = ...,
        state_types: Iterable[StateType | str] | None = ...,
        since: float | None = ...,
        until: float | None = ...,
        parent_flow_run_id: uuid.UUID | None = ...,
        limit: int | None = ...,
    ) -> list[FlowRunRow]: ...

    def count_flow_runs_by_state(
        self,
        *,
        flow_name: str | None = ...,
        state_types: Iterable[StateType | str] | None = ...,
        since: float | None = ...,
        until: float | None = ...,
        parent_flow_run_id: uuid.UUID | None = ...,
    ) -> dict[StateType, int]: ...

    def read_flow_run(self, flow_run_id: str | uuid.UUID) -> FlowRunRow: ...

    def list_task_runs(
        self,
        *,
        flow_run_id: uuid.UUID | None = ...,
        state_types: Iterable[StateType | str] | None = ...,
        limit: int | None = ...,
        newest_first: bool = ...,
    ) -> list[TaskRunRow]: ...

    def count_task_runs_by_state(
        self,
        *,
        flow_run_id: uuid.UUID | None = ...,
        state_types: Iterable[StateType | str] | None = ...,
    ) -> dict[StateType, int]: ...

    def read_state_history(self, *, flow_run_id: uuid.UUID) -> list[StateRow]: ...

    def read_logs(
        self,
        *,
        flow_run_id: uuid.UUID,
        after_timestamp: float | None = ...,
        min_level: int | None = ...,
    ) -> list[LogRow]: ...

    def detect_crashed_runs(self) -> int:
        """Mark crashed runs (embedded mode; a server does it itself); return how many."""
        ...

    def refresh(self) -> None:
        """Let the next read see what was written since the last (`logs --follow`)."""
        ...

    def stream_logs(
        self, *, flow_run_id: uuid.UUID, min_level: int | None
    ) -> Iterator[list[LogRow]] | None:
        """Log lines pushed live until the run is final, or None: then poll `read_logs`."""
        ...


class StoreReader:
    """A `Reader` over the store: the queries, on one connection (one consistent snapshot)."""

    def __init__(self, store: Store, conn: sa.Connection) -> None:
        from headwater.store import queries

        self._store = store
        self._conn = conn
        self._queries = queries

    def list_flow_runs(self, **filters: Any) -> list[FlowRunRow]:
        return self._queries.list_flow_runs(self._conn, **filters)

    def count_flow_runs_by_state(self, **filters: Any) -> dict[StateType, int]:
        return self._queries.count_flow_runs_by_state(self._conn, **filters)

    def read_flow_run(self, flow_run_id: str | uuid.UUID) -> FlowRunRow:
        return self._queries.read_flow_run(self._conn, flow_run_id)

    def list_task_runs(self, **filters: Any) -> list[TaskRunRow]:
        return self._queries.list_task_runs(self._conn, **filters)

    def count_task_runs_by_state(self, **filters: Any) -> dict[StateType, int]:
        return self._queries.count_task_runs_by_state(self._conn, **filters)

    def read_state_history(self, *, flow_run_id: uuid.UUID) -> list[StateRow]:
        return self._queries.read_state_history(self._conn, flow_run_id=flow_run_id)

    def read_logs(self, **filters: Any) -> list[LogRow]:
        return self._queries.read_logs(self._conn, **filters)

    def detect_crashed_runs(self) -> int:
        return self._store.detect_crashed_runs()

    def refresh(self) -> None:
        self._conn.rollback()  # ends the read transaction, and with it the snapshot

    def stream_logs(
        self, *, flow_run_id: uuid.UUID, min_level: int | None
    ) -> Iterator[list[LogRow]] | None:
        return None  # a store pushes nothing: `logs --follow` polls it


@contextlib.contextmanager
def open_reader() -> Iterator[Reader]:
    """What the run commands read: the server at HEADWATER_API_URL if set, else the store.

    Against a server, crash detection is the server's job and is not run here.
    """
    from headwater.settings import get_settings

    settings = get_settings()
    if settings.api_url:
        from headwater.client.reader import RemoteReader

        remote = RemoteReader(settings.api_url, api_key=settings.api_key)
        try:
            yield remote
        finally:
            remote.close()
        return
    with open_store() as store, store.engine.connect() as conn:
        yield StoreReader(store, conn)


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Run a command; print errors a user can act on as one red line and exit 1.

    Unexpected exceptions (bugs) still show their traceback.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from headwater.cli.output import fail

        try:
            return func(*args, **kwargs)
        except HeadwaterError as exc:
            fail(str(exc) or type(exc).__name__)
        except KeyboardInterrupt:
            fail("Interrupted.", code=130)
        except BrokenPipeError:
            _silence_stdout()  # the reader went away (`... | head`): not an error to report
            raise SystemExit(1) from None
        except OSError as exc:  # e.g. HEADWATER_HOME is not writable
            fail(f"Cannot use the store at {_store_url()}: {exc}")
        except Exception as exc:
            message = _database_error_message(exc)
            if message is None:
                raise
            fail(message)

    return wrapper


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (e.g. under a test runner)
        pass


def _database_error_message(exc: Exception) -> str | None:
    """A readable message for an error raised by a database driver, else None."""
    errors: list[type[BaseException]] = []
    for module_name, class_name in (
        ("sqlalchemy.exc", "SQLAlchemyError"),
        ("sqlite3", "Error"),
        ("psycopg", "Error"),
    ):
        module = sys.modules.get(module_name)
        if module is not None:
            errors.append(getattr(module, class_name))
    if not errors or not isinstance(exc, tuple(errors)):
        return None
    detail = getattr(exc, "orig", None) or exc
    reason = str(detail).strip().splitlines()[0] if str(detail).strip() else type(detail).__name__
    return (
        f"Cannot read the store at {_store_url()}: {reason}. Check the database URL "
        "(HEADWATER_DATABASE_URL; see `headwater config view`)."
    )


def _store_url() -> str:
    from headwater.cli.output import mask_url
    from headwater.settings import get_settings

    try:
        return mask_url(get_settings().effective_database_url)
    except HeadwaterError:
        return "(unknown)"
