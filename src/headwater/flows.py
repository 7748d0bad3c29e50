"""`@flow`: a function whose every call is a recorded flow run.

Example:
    @flow(retries=1, log_prints=True)
    def etl(urls: list[str]) -> int:
        pages = fetch.map(urls)
        return sum(len(p.result()) for p in pages)

    etl(["a", "b"])  # runs now, returns the result; see `headwater flow-run ls`
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from headwater.core.retries import resolve_delays
from headwater.core.states import State
from headwater.engine.hooks import StateHookDecorators
from headwater.engine.machine import NO_RETRIES, RetryPolicy

if TYPE_CHECKING:
    from pathlib import Path

    from headwater.deployments.runner import RunnerDeployment
    from headwater.engine.parameters import ParameterValidator
    from headwater.engine.results import ResultOptions
    from headwater.engine.runs import FlowRun
    from headwater.results import ResultStorage
    from headwater.serializers import Serializer
    from headwater.task_runners import TaskRunner

P = ParamSpec("P")
R = TypeVar("R")

__all__ = ["Flow", "flow"]

StateHook = Callable[[Any, Any, State], Any]


class Flow(StateHookDecorators, Generic[P, R]):
    """A function whose calls are flow runs. Create one with `@flow`."""

    def __init__(
        self,
        fn: Callable[P, R],
        name: str | None = None,
        version: str | None = None,
        flow_run_name: str | Callable[[], str] | None = None,
        description: str | None = None,
        retries: int | None = None,
        retry_delay_seconds: float | int | None = None,
        timeout_seconds: float | None = None,
        task_runner: TaskRunner | None = None,
        validate_parameters: bool = True,
        cache_result_in_memory: bool = True,
        log_prints: bool | None = None,
        on_completion: list[StateHook] | None = None,
        on_failure: list[StateHook] | None = None,
        on_cancellation: list[StateHook] | None = None,
        on_crashed: list[StateHook] | None = None,
        on_running: list[StateHook] | None = None,
        persist_result: bool | None = None,
        result_storage: ResultStorage | str | Path | None = None,
        result_serializer: Serializer | str | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"@flow needs a function, got {fn!r}.")
        self.result_storage = result_storage
        self.result_serializer = result_serializer
        #: None unless this flow persists results (its own, and its tasks' by default)
        self.result_options: ResultOptions | None = None
        self.persist_result = persist_result
        if persist_result or result_storage is not None or result_serializer is not None:
            from headwater.engine.results import flow_result_options

            self.persist_result, self.result_options = flow_result_options(
                persist_result, result_storage, result_serializer
            )
        self._result_settings: dict[str, Any] = {
            "persist_result": persist_result,
            "result_storage": result_storage,
            "result_serializer": result_serializer,
        }
        self.fn = fn
        self.name: str = name or getattr(fn, "__name__", type(fn).__name__).replace("_", "-")
        self.version = version
        self.flow_run_name = flow_run_name
        self.description = description or inspect.getdoc(fn)
        if retries is not None and retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries!r}.")
        self.retries = retries or 0
        self.retry_delay_seconds = retry_delay_seconds
        if timeout_seconds is not None and timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be > 0, got {timeout_seconds!r}.")
        self.timeout_seconds = timeout_seconds
        if task_runner is None:
            from headwater.task_runners import ThreadPoolTaskRunner

            task_runner = ThreadPoolTaskRunner()
        elif isinstance(task_runner, type):
            task_runner = task_runner()
        self.task_runner = task_runner
        self.validate_parameters = validate_parameters
        self.cache_result_in_memory = cache_result_in_memory
        self.log_prints = log_prints
        self.on_completion_hooks = list(on_completion or [])
        self.on_failure_hooks = list(on_failure or [])
        self.on_cancellation_hooks = list(on_cancellation or [])
        self.on_crashed_hooks = list(on_crashed or [])
        self.on_running_hooks = list(on_running or [])
        self.is_async = inspect.iscoroutinefunction(fn)
        self.signature = inspect.signature(fn)
        self._validator: ParameterValidator | None = None
        self.retry_policy = (
            RetryPolicy(
                retries=self.retries,
                delays=tuple(resolve_delays(retry_delay_seconds, self.retries)),
            )
            if self.retries
            else NO_RETRIES
        )
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    @property
    def validator(self) -> ParameterValidator:
        if self._validator is None:
            from headwater.engine.parameters import ParameterValidator

            self._validator = ParameterValidator(self.fn, self.signature)
        return self._validator

    def with_options(self, **options: Any) -> Flow[P, R]:
        """A copy of this flow with some options changed."""
        current: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "flow_run_name": self.flow_run_name,
            "description": self.description,
            "retries": self.retries,
            "retry_delay_seconds": self.retry_delay_seconds,
            "timeout_seconds": self.timeout_seconds,
            "task_runner": self.task_runner.duplicate(),
            "validate_parameters": self.validate_parameters,
            "cache_result_in_memory": self.cache_result_in_memory,
            "log_prints": self.log_prints,
            "on_completion": self.on_completion_hooks,
            "on_failure": self.on_failure_hooks,
            "on_cancellation": self.on_cancellation_hooks,
            "on_crashed": self.on_crashed_hooks,
            "on_running": self.on_running_hooks,
            **self._result_settings,
        }
        unknown = set(options) - set(current)
        if unknown:
            raise TypeError(f"with_options() got unexpected option(s) {sorted(unknown)}.")
        current.update(options)
        return Flow(self.fn, **current)

    # -- hooks as decorators (on_completion, on_failure, on_running are inherited) ------
    def on_cancellation(self, fn: StateHook) -> StateHook:
        self.on_cancellation_hooks.append(fn)
        return fn

    def on_crashed(self, fn: StateHook) -> StateHook:
        self.on_crashed_hooks.append(fn)
        return fn

    # -- calling ------------------------------------------------------------------------
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the flow now; returns its result (its `State` with `return_state=True`).

        An async flow returns a coroutine to await.
        """
        return_state = bool(kwargs.pop("return_state", False))
        if self.is_async:
            from headwater.engine.flow_engine import run_flow_async

            return run_flow_async(self, args, kwargs, return_state)  # type: ignore[return-value]
        from headwater.engine.flow_engine import run_flow_sync

        result: R = run_flow_sync(self, args, kwargs, return_state)
        return result

    # -- deployments ------------------------------------------------------------------
    def to_deployment(self, name: str | None = None, **options: Any) -> RunnerDeployment:
        """A deployment of this flow, for `serve(...)` or `deploy(...)`.

        Options: cron, interval, rrule, anchor_date, timezone, schedules, parameters,
        tags, version, description, paused, concurrency_limit (an int, or limit and
        collision_strategy), enforce_parameter_schema, work_pool_name,
        work_queue_name, job_variables, entrypoint, path. See docs/deployments.md.
        """
        from headwater.deployments.runner import to_deployment

        return to_deployment(self, name, **options)

    def serve(
        self,
        name: str | None = None,
        *,
        limit: int | None = None,
        pause_on_shutdown: bool = True,
        print_starting_message: bool = True,
        **options: Any,
    ) -> None:
        """Deploy this flow and run its runs here, in subprocesses, until Ctrl-C.

        Example:
            nightly.serve(name="nightly", cron="0 2 * * *", parameters={"day": "today"})

        `options` are those of `to_deployment`. With no server configured, the API
        runs in this process on the embedded store.
        """
        from headwater.deployments.runner import serve

        serve(
            self.to_deployment(name, **options),
            limit=limit,
            pause_on_shutdown=pause_on_shutdown,
            print_starting_message=print_starting_message,
        )

    def deploy(self, name: str, work_pool_name: str | None = None, **options: Any) -> str:
        """Register a deployment of this flow on a work pool; its id. The pool's workers
        (`headwater worker start --pool NAME`) run it."""
        from headwater.deployments.runner import deploy

        deployment = self.to_deployment(name, work_pool_name=work_pool_name, **options)
        return deploy(deployment)[0]

    def render_run_name(self, run: FlowRun) -> str:
        template = self.flow_run_name
        if callable(template):
            return str(template())
        assert template is not None
        try:
            return template.format(**run.parameters)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"flow_run_name {template!r} of flow {self.name!r} cannot be rendered: "
                f"{exc!r}; use the flow's parameter names: {list(self.signature.parameters)}."
            ) from None

    def __repr__(self) -> str:
        return f"Flow(name={self.name!r})"


@overload
def flow(__fn: Callable[P, R]) -> Flow[P, R]: ...


@overload
def flow(
    *,
    name: str | None = None,
    version: str | None = None,
    flow_run_name: str | Callable[[], str] | None = None,
    description: str | None = None,
    retries: int | None = None,
    retry_delay_seconds: float | int | None = None,
    timeout_seconds: float | None = None,
    task_runner: TaskRunner | None = None,
    validate_parameters: bool = True,
    cache_result_in_memory: bool = True,
    log_prints: bool | None = None,
    on_completion: list[StateHook] | None = None,
    on_failure: list[StateHook] | None = None,
    on_cancellation: list[StateHook] | None = None,
    on_crashed: list[StateHook] | None = None,
    on_running: list[StateHook] | None = None,
    persist_result: bool | None = None,
    result_storage: ResultStorage | str | Path | None = None,
    result_serializer: Serializer | str | None = None,
) -> Callable[[Callable[P, R]], Flow[P, R]]: ...


def flow(__fn: Any = None, **options: Any) -> Any:
    """Turn a function, sync or async, into a `Flow`. Usable bare or with options."""
    from headwater.tasks import check_options

    check_options("@flow", Flow, options)
    if __fn is not None:
        return Flow(__fn, **options)
    return lambda fn: Flow(fn, **options)
