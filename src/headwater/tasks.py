"""`@task`: a function whose every call is a recorded, retryable task run.

Example:
    @task(retries=2, retry_delay_seconds=[0.1, 0.5])
    def fetch(url: str) -> bytes: ...

    fetch("https://example.com")          # run here, return the result
    future = fetch.submit("https://...")  # run on the flow's task runner
    futures = fetch.map(urls)             # one task run per item
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from headwater.core.retries import RetryDelay, exponential_backoff, resolve_delays
from headwater.core.states import State
from headwater.engine.hooks import StateHookDecorators
from headwater.engine.machine import NO_RETRIES, RetryPolicy

if TYPE_CHECKING:
    import datetime
    from pathlib import Path

    from headwater.cache_policies import CachePolicy
    from headwater.engine.results import ResultOptions
    from headwater.engine.runs import TaskRun
    from headwater.futures import HeadwaterFuture, HeadwaterFutureList
    from headwater.results import ResultStorage
    from headwater.serializers import Serializer
    from headwater.transactions import Transaction

P = ParamSpec("P")
R = TypeVar("R")

__all__ = ["Task", "exponential_backoff", "task", "task_input_hash"]

StateHook = Callable[[Any, Any, State], Any]
TransactionHook = Callable[["Transaction"], Any]


class Task(StateHookDecorators, Generic[P, R]):
    """A function whose calls are task runs. Create one with `@task`."""

    def __init__(
        self,
        fn: Callable[P, R],
        name: str | None = None,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        version: str | None = None,
        task_run_name: str | Callable[[], str] | None = None,
        retries: int | None = None,
        retry_delay_seconds: RetryDelay = None,
        retry_jitter_factor: float | None = None,
        retry_condition_fn: Callable[[Task[Any, Any], TaskRun, State], bool] | None = None,
        timeout_seconds: float | None = None,
        log_prints: bool | None = None,
        cache_result_in_memory: bool = True,
        on_completion: list[StateHook] | None = None,
        on_failure: list[StateHook] | None = None,
        on_running: list[StateHook] | None = None,
        cache_policy: CachePolicy | None = None,
        cache_key_fn: Callable[[Any, dict[str, Any]], str | None] | None = None,
        cache_expiration: datetime.timedelta | None = None,
        refresh_cache: bool | None = None,
        persist_result: bool | None = None,
        result_storage: ResultStorage | str | Path | None = None,
        result_serializer: Serializer | str | None = None,
        result_storage_key: str | None = None,
        on_commit: list[TransactionHook] | None = None,
        on_rollback: list[TransactionHook] | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"@task needs a function, got {fn!r}.")
        self._result_settings: dict[str, Any] = {
            "cache_policy": cache_policy,
            "cache_key_fn": cache_key_fn,
            "cache_expiration": cache_expiration,
            "refresh_cache": refresh_cache,
            "persist_result": persist_result,
            "result_storage": result_storage,
            "result_serializer": result_serializer,
            "result_storage_key": result_storage_key,
        }
        self.cache_policy = cache_policy
        self.cache_key_fn = cache_key_fn
        self.cache_expiration = cache_expiration
        self.refresh_cache = refresh_cache
        self.result_storage = result_storage
        self.result_serializer = result_serializer
        self.result_storage_key = result_storage_key
        #: None unless this task persists its results (see engine/results.py)
        self.result_options: ResultOptions | None = None
        self.persist_result = persist_result
        if any(value is not None for value in self._result_settings.values()):
            from headwater.engine.results import task_result_options

            self.persist_result, self.result_options = task_result_options(
                persist_result,
                cache_policy,
                cache_key_fn,
                cache_expiration,
                refresh_cache,
                result_storage,
                result_serializer,
                result_storage_key,
            )
        self.on_commit_hooks = list(on_commit or [])
        self.on_rollback_hooks = list(on_rollback or [])
        self.fn = fn
        self.name: str = name or str(getattr(fn, "__name__", type(fn).__name__))
        self.description = description or inspect.getdoc(fn)
        self.tags = frozenset(tags or ())
        self.sorted_tags = sorted(self.tags)
        self.version = version
        self.task_run_name = task_run_name
        if retries is not None and retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries!r}.")
        self.retries = retries or 0
        self.retry_delay_seconds = retry_delay_seconds
        self.retry_jitter_factor = retry_jitter_factor
        self.retry_condition_fn = retry_condition_fn
        if timeout_seconds is not None and timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be > 0, got {timeout_seconds!r}.")
        self.timeout_seconds = timeout_seconds
        self.log_prints = log_prints
        if log_prints:
            from headwater.logging.run_logger import enable_log_prints

            enable_log_prints()
        self.cache_result_in_memory = cache_result_in_memory
        self.on_completion_hooks = list(on_completion or [])
        self.on_failure_hooks = list(on_failure or [])
        self.on_running_hooks = list(on_running or [])
        self.is_async = inspect.iscoroutinefunction(fn)
        self.signature = inspect.signature(fn)
        module = getattr(fn, "__module__", None) or "__main__"
        qualname = getattr(fn, "__qualname__", self.name)
        self.task_key = f"{module}.{qualname}"
        if name and name != getattr(fn, "__name__", None):
            self.task_key += f"[{name}]"
        self.retry_policy = self._retry_policy()
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    def _retry_policy(self) -> RetryPolicy:
        if not self.retries:
            return NO_RETRIES
        condition = None
        if self.retry_condition_fn is not None:
            user_condition = self.retry_condition_fn

            def condition(state: State) -> bool:
                from headwater.context import task_run_context

                context = task_run_context.get()
                return bool(user_condition(self, context.task_run if context else None, state))  # type: ignore[arg-type]

        return RetryPolicy(
            retries=self.retries,
            delays=tuple(resolve_delays(self.retry_delay_seconds, self.retries)),
            jitter_factor=self.retry_jitter_factor,
            condition=condition,
        )

    # -- options --------------------------------------------------------------------
    def with_options(self, **options: Any) -> Task[P, R]:
        """A copy of this task with some options changed.

        Example:
            fetch.with_options(retries=5, name="fetch-eu")("https://...")
        """
        current: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "tags": self.tags,
            "version": self.version,
            "task_run_name": self.task_run_name,
            "retries": self.retries,
            "retry_delay_seconds": self.retry_delay_seconds,
            "retry_jitter_factor": self.retry_jitter_factor,
            "retry_condition_fn": self.retry_condition_fn,
            "timeout_seconds": self.timeout_seconds,
            "log_prints": self.log_prints,
            "cache_result_in_memory": self.cache_result_in_memory,
            "on_completion": self.on_completion_hooks,
            "on_failure": self.on_failure_hooks,
            "on_running": self.on_running_hooks,
            "on_commit": self.on_commit_hooks,
            "on_rollback": self.on_rollback_hooks,
            **self._result_settings,
        }
        unknown = set(options) - set(current)
        if unknown:
            raise TypeError(f"with_options() got unexpected option(s) {sorted(unknown)}.")
        current.update(options)
        return Task(self.fn, **current)

    # -- transaction hooks ----------------------------------------------------------------
    def on_commit(self, fn: TransactionHook) -> TransactionHook:
        """Call `fn(txn)` when the transaction this task's run completed in commits."""
        self.on_commit_hooks.append(fn)
        return fn

    def on_rollback(self, fn: TransactionHook) -> TransactionHook:
        """Call `fn(txn)` when the transaction this task's run completed in rolls back."""
        self.on_rollback_hooks.append(fn)
        return fn

    # -- calling ------------------------------------------------------------------------
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the task here and return its result (its `State` with `return_state=True`)."""
        from headwater.engine.task_engine import call_task

        return_state = kwargs.pop("return_state", False)
        wait_for = kwargs.pop("wait_for", None)
        result: R = call_task(self, args, kwargs, wait_for, bool(return_state))  # type: ignore[arg-type]
        return result

    def submit(self, *args: P.args, **kwargs: P.kwargs) -> HeadwaterFuture[R]:
        """Run the task on the flow's task runner; returns a future at once."""
        return_state = kwargs.pop("return_state", False)
        wait_for = kwargs.pop("wait_for", None)
        future = self._submit(args, kwargs, wait_for)  # type: ignore[arg-type]
        if return_state:
            future.wait()
            return future.state  # type: ignore[return-value]
        return future

    def _submit(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], wait_for: Iterable[Any] | None
    ) -> HeadwaterFuture[R]:
        from headwater.context import flow_run_context
        from headwater.engine.task_engine import new_task_run

        flow_context = flow_run_context.get()
        runner = flow_context.task_runner if flow_context is not None else _default_runner()
        run = new_task_run(self, args, kwargs, wait_for, flow_context)
        return runner.submit(self, run, args, kwargs, wait_for, flow_context)

    def map(self, *args: Any, **kwargs: Any) -> HeadwaterFutureList[R]:
        """Submit one task run per item of the iterable arguments.

        Iterables are zipped; `unmapped(x)` and non-iterable values are passed
        whole to every call. Futures passed to `map` are waited for and their
        results mapped over.
        """
        from headwater.engine.mapping import expand
        from headwater.futures import HeadwaterFutureList

        kwargs.pop("return_state", None)
        wait_for = kwargs.pop("wait_for", None)
        futures: HeadwaterFutureList[R] = HeadwaterFutureList()
        for call_args, call_kwargs in expand(self, args, kwargs):
            futures.append(self._submit(call_args, call_kwargs, wait_for))
        return futures

    def render_run_name(self, run: TaskRun) -> str:
        """The run name from `task_run_name` (a template over parameters, or a callable)."""
        template = self.task_run_name
        if callable(template):
            from headwater.context import TaskRunContext, task_run_context

            token = task_run_context.set(TaskRunContext(self, run, None, False))
            try:
                return str(template())
            finally:
                task_run_context.reset(token)
        assert template is not None
        try:
            return template.format(**run.parameters)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"task_run_name {template!r} of task {self.name!r} cannot be rendered: "
                f"{exc!r}; use the task's parameter names: {list(self.signature.parameters)}."
            ) from None

    def __repr__(self) -> str:
        return f"Task(name={self.name!r})"


_default: Any = None


def _default_runner() -> Any:
    """The runner for `.submit()` outside a flow run: one shared thread pool."""
    global _default
    if _default is None:
        from headwater.task_runners import ThreadPoolTaskRunner

        _default = ThreadPoolTaskRunner()
    return _default


@overload
def task(__fn: Callable[P, R]) -> Task[P, R]: ...


@overload
def task(
    *,
    name: str | None = None,
    description: str | None = None,
    tags: Iterable[str] | None = None,
    version: str | None = None,
    task_run_name: str | Callable[[], str] | None = None,
    retries: int | None = None,
    retry_delay_seconds: RetryDelay = None,
    retry_jitter_factor: float | None = None,
    retry_condition_fn: Callable[[Task[Any, Any], TaskRun, State], bool] | None = None,
    timeout_seconds: float | None = None,
    log_prints: bool | None = None,
    cache_result_in_memory: bool = True,
    on_completion: list[StateHook] | None = None,
    on_failure: list[StateHook] | None = None,
    on_running: list[StateHook] | None = None,
    cache_policy: CachePolicy | None = None,
    cache_key_fn: Callable[[Any, dict[str, Any]], str | None] | None = None,
    cache_expiration: datetime.timedelta | None = None,
    refresh_cache: bool | None = None,
    persist_result: bool | None = None,
    result_storage: ResultStorage | str | Path | None = None,
    result_serializer: Serializer | str | None = None,
    result_storage_key: str | None = None,
    on_commit: list[TransactionHook] | None = None,
    on_rollback: list[TransactionHook] | None = None,
) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def task(__fn: Any = None, **options: Any) -> Any:
    """Turn a function, sync or async, into a `Task`. Usable bare or with options."""
    check_options("@task", Task, options)
    if __fn is not None:
        return Task(__fn, **options)
    return lambda fn: Task(fn, **options)


_known_options: dict[type, frozenset[str]] = {}


def check_options(kind: str, owner: type, options: dict[str, Any]) -> None:
    """Refuse misspelt options with the list of known ones (not Python's bare TypeError)."""
    known = _known_options.get(owner)
    if known is None:
        parameters = inspect.signature(owner.__init__).parameters  # type: ignore[misc]
        known = _known_options[owner] = frozenset(parameters) - {"self", "fn"}
    unknown = set(options) - known
    if unknown:
        raise TypeError(
            f"{kind} got unexpected option(s) {sorted(unknown)}; "
            f"known options: {', '.join(sorted(known))}."
        )


def task_input_hash(context: Any, arguments: dict[str, Any]) -> str | None:
    """A cache key from the task's name and its arguments (for `cache_key_fn`)."""
    import hashlib
    import json

    try:
        text = json.dumps(arguments, sort_keys=True, default=repr)
    except TypeError:
        return None
    task_key = getattr(getattr(context, "task", None), "task_key", "")
    return hashlib.sha256(f"{task_key}:{text}".encode()).hexdigest()
