"""Flow runs: creation, the sync and async drivers, and the flow's final state.

A flow called inside another flow (or task) is a subflow: a child flow run
linked to its parent, and represented in the parent by a task run so the
parent's timeline shows it. The root flow run waits, before returning, until
every record it produced is durable.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from headwater.client import check_delivered
from headwater.context import FlowRunContext, current_tags, flow_run_context, task_run_context
from headwater.core.ids import flow_id, uuid7_hex
from headwater.core.states import State, StateType
from headwater.engine.caching import flow_succeeded
from headwater.engine.crash import current_process_tag
from headwater.engine.hooks import call_hooks, call_hooks_async, hooks_for
from headwater.engine.machine import Machine
from headwater.engine.names import generate_run_name
from headwater.engine.parameters import bind, jsonable
from headwater.engine.pause import suspended
from headwater.engine.recorder import get_recorder
from headwater.engine.runs import FlowRun, TaskRun, state_row
from headwater.engine.task_engine import emit_task_state
from headwater.engine.timeouts import sync_timeout
from headwater.exceptions import (
    FlowRunTimeoutError,
    ParameterTypeError,
    StoreError,
    TerminationSignal,
)
from headwater.futures import HeadwaterFuture
from headwater.logging.run_logger import enable_log_prints, flow_run_logger

if TYPE_CHECKING:
    from headwater.flows import Flow

logger = logging.getLogger(__name__)

#: How long a root flow run waits for its records to be written before it
#: returns anyway (the error is logged; records stay queued for retry).
COMMIT_TIMEOUT = 60.0


def _emit_flow_state(run: FlowRun, state: State) -> None:
    get_recorder().flow_run(run.row(), state_row(state, run.hex_id, None))


@dataclasses.dataclass(frozen=True, slots=True)
class AdoptedRun:
    """A flow run that exists already (a deployment's run, begun by its worker's process).

    The engine runs the flow under this id and name instead of creating a run;
    `run_count` is the attempt the server's `begin` started.
    """

    hex_id: str
    name: str
    tags: list[str]
    run_count: int
    #: when `begin` moved it to Running (epoch seconds)
    started: float
    deployment_hex: str | None = None
    expected_start_time: float | None = None
    parent_flow_run_hex: str | None = None
    root_flow_run_hex: str | None = None
    parent_task_run_hex: str | None = None


class _Launch:
    """A flow run being started: its run object, parent link and validated parameters."""

    __slots__ = ("adopted", "flow", "parameters", "parent", "parent_task_run", "run")

    def __init__(
        self,
        flow: Flow[Any, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        adopt: AdoptedRun | None = None,
    ):
        self.flow = flow
        self.parameters = bind(flow.fn, flow.signature, args, kwargs)
        self.adopted = adopt is not None
        if adopt is not None:
            self._adopt(adopt)
            return
        self.parent = flow_run_context.get()
        task_context = task_run_context.get()
        now = time.time()
        run_id = uuid7_hex()
        parent_run = self.parent.flow_run if self.parent is not None else None
        self.parent_task_run: TaskRun | None = None
        if self.parent is not None:
            self.parent_task_run = self._parent_task_run(flow, self.parent)
        elif task_context is not None:
            parent_run = task_context.flow_run
        self.run = FlowRun(
            hex_id=run_id,
            flow_hex_id=flow_id(flow.name),
            flow_name=flow.name,
            name="",
            parameters=self.parameters,
            tags=sorted(current_tags()),
            parent_flow_run_hex=parent_run.hex_id if parent_run else None,
            root_flow_run_hex=parent_run.root_flow_run_hex if parent_run else None,
            parent_task_run_hex=(
                self.parent_task_run.hex_id
                if self.parent_task_run
                else task_context.task_run.hex_id
                if task_context
                else None
            ),
            process=current_process_tag(),
            state=State(StateType.PENDING, timestamp=now),
        )
        self.run.name = (
            flow.render_run_name(self.run) if flow.flow_run_name else generate_run_name()
        )
        self.run.json_parameters = jsonable(self.parameters)
        recorder = get_recorder()
        recorder.flow((self.run.flow_hex_id, flow.name, self.run.created))
        recorder.flow_run(self.run.row(), state_row(self.run.state, run_id, None))

    def _adopt(self, adopt: AdoptedRun) -> None:
        """Run under the existing run `adopt`: no Pending record (the run exists)."""
        flow = self.flow
        self.parent = None  # the root of this process, whatever its links on the server
        self.parent_task_run = None
        self.run = FlowRun(
            hex_id=adopt.hex_id,
            flow_hex_id=flow_id(flow.name),
            flow_name=flow.name,
            name=adopt.name,
            parameters=self.parameters,
            tags=list(adopt.tags),
            parent_flow_run_hex=adopt.parent_flow_run_hex,
            root_flow_run_hex=adopt.root_flow_run_hex,
            parent_task_run_hex=adopt.parent_task_run_hex,
            deployment_hex=adopt.deployment_hex,
            expected_start_time=adopt.expected_start_time,
            process=current_process_tag(),
            state=State(StateType.PENDING),
        )
        # `begin` recorded this attempt's Running state: the run starts there, and the
        # engine does not enter Running again for it (see `_begin`).
        running = State(StateType.RUNNING, timestamp=adopt.started)
        self.run.state = running
        self.run.run_count = adopt.run_count
        self.run.start_time = adopt.started
        self.run.json_parameters = jsonable(self.parameters)
        get_recorder().flow((self.run.flow_hex_id, flow.name, self.run.created))

    @staticmethod
    def _parent_task_run(flow: Flow[Any, Any], parent: FlowRunContext) -> TaskRun:
        task_key = f"subflow:{flow.name}"
        number = parent.next_dynamic_key(task_key)
        state = State(StateType.RUNNING)
        run = TaskRun(
            hex_id=uuid7_hex(),
            name=f"{flow.name}-{number}",
            task_key=task_key,
            task_name=flow.name,
            dynamic_key=str(number),
            flow_run_hex=parent.flow_run.hex_id,
            tags=[],
            state=state,
        )
        run.run_count = 1
        run.start_time = state.timestamp
        emit_task_state(run, state)
        return run

    def validate(self, machine: Machine) -> bool:
        """Validate parameters; on failure the run is Failed before it starts."""
        if not self.flow.validate_parameters:
            return True
        try:
            self.parameters = self.flow.validator.validate(self.parameters)
        except ParameterTypeError as exc:
            machine.failed(exc)
            return False
        self.run.parameters = self.parameters
        return True

    def finish_parent_task_run(self) -> None:
        task_run = self.parent_task_run
        if task_run is not None:
            final = self.run.state
            task_run.state = State(final.type, final.name, final.message, final.data)
            task_run.end_time = task_run.state.timestamp
            emit_task_state(task_run, task_run.state)


def _final_state(value: Any) -> Any:
    """Prefect's rules for a flow's return value: futures and states decide the state."""
    if isinstance(value, HeadwaterFuture):
        value.wait()
        return value.state
    if (
        type(value) in (list, tuple, set)
        and value
        and all(isinstance(v, (HeadwaterFuture, State)) for v in value)
    ):
        states = []
        for item in value:
            if isinstance(item, HeadwaterFuture):
                item.wait()
                states.append(item.state)
            else:
                states.append(item)
        failed = [s for s in states if not s.is_completed()]
        if failed:
            return State(
                StateType.FAILED,
                message=f"{len(failed)}/{len(states)} states failed.",
                data=failed[0].data if isinstance(failed[0].data, BaseException) else None,
            )
        return State(StateType.COMPLETED, data=type(value)(s.data for s in states))
    return value


@contextmanager
def _termination_as_exception() -> Iterator[None]:
    """In the main thread, turn SIGTERM into an exception so the run is marked Crashed."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def terminate(signum: int, _frame: Any) -> None:
        raise TerminationSignal(signum)

    signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _context(launch: _Launch) -> FlowRunContext:
    flow = launch.flow
    if flow.log_prints:
        enable_log_prints()
    return FlowRunContext(flow, launch.run, flow.task_runner.duplicate(), bool(flow.log_prints))


def _outcome(launch: _Launch, return_state: bool) -> Any:
    try:
        return _state_outcome(launch, return_state)
    finally:
        if launch.parent is None:
            # A root run whose final state reached only the local spool (server
            # unreachable) fails loudly, naming the spool; see docs/remote-mode.md.
            check_delivered(get_recorder().backend, launch.run.hex_id)


def _state_outcome(launch: _Launch, return_state: bool) -> Any:
    state = launch.run.state
    log = flow_run_logger(launch.run)
    if state.is_completed():
        log.info("Finished in state %r", state)
    elif state.type in (StateType.CANCELLED, StateType.PAUSED):
        log.warning("Finished in state %r", state)
    else:
        log.error("Finished in state %r", state)
    data = state.data
    if isinstance(data, BaseException) and not isinstance(data, Exception):
        raise data  # interrupts stop the program once recorded
    return state if return_state else state.result()


def _begin(launch: _Launch, machine: Machine) -> None:
    """Enter Running for the next attempt; an adopted run's first attempt is Running already."""
    if launch.adopted and launch.run.state.type is StateType.RUNNING:
        return
    machine.begin()


def _started(launch: _Launch) -> None:
    """A root flow run entering Running waits until that is durable.

    This is the one synchronous write at the start of a run: it opens (and if
    needed creates) the store, so a bad database URL fails here, loudly, and a
    SIGKILL right after the start still leaves the run on record.
    """
    if launch.parent is None and launch.run.run_count == 1 and not launch.adopted:
        try:
            get_recorder().commit().result(COMMIT_TIMEOUT)
        except Exception as exc:
            raise StoreError(
                f"Cannot record flow run {launch.run.name!r} in the run store: {exc}. Check "
                "HEADWATER_DATABASE_URL / HEADWATER_HOME (`headwater config view`)."
            ) from exc


def _wait_durable(launch: _Launch) -> None:
    if launch.parent is None:
        try:
            get_recorder().commit().result(COMMIT_TIMEOUT)
        except Exception as exc:
            logger.error("Flow run %r: run records not yet written: %s", launch.run.name, exc)


def run_flow_sync(
    flow: Flow[Any, Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    return_state: bool,
    adopt: AdoptedRun | None = None,
) -> Any:
    launch = _Launch(flow, args, kwargs, adopt)
    run = launch.run
    machine = Machine(run, "Flow", flow.retry_policy, _emit_flow_state, flow.timeout_seconds)
    if launch.validate(machine):
        context = _context(launch)
        token = flow_run_context.set(context)
        log = flow_run_logger(run)
        try:
            with _termination_as_exception(), context.task_runner:
                while True:
                    _begin(launch, machine)
                    _started(launch)
                    if run.run_count == 1:
                        log.info("Beginning flow run %r for flow %r", run.name, flow.name)
                    if flow.on_running_hooks:
                        call_hooks(flow.on_running_hooks, flow, run, run.state)
                    try:
                        with sync_timeout(flow.timeout_seconds, FlowRunTimeoutError):
                            value = flow.fn(*args_of(launch), **kwargs_of(launch))
                        if flow.result_options is None:
                            delay = machine.succeeded(_final_state(value))
                        else:
                            delay = flow_succeeded(flow, machine, _final_state(value))
                    except BaseException as exc:
                        if suspended(run, exc):
                            break  # the server holds the run; this process ends it
                        delay = machine.failed(exc)
                    if delay is None:
                        break
                    log.warning("%s", run.state.message)
                    if delay:
                        time.sleep(delay)
        except BaseException as exc:  # SIGTERM or Ctrl-C while waiting for task runs
            if not run.state.is_final():
                machine.failed(exc)
        finally:
            flow_run_context.reset(token)
    launch.finish_parent_task_run()
    hooks = hooks_for(flow, run.state)
    if hooks:
        call_hooks(hooks, flow, run, run.state)
    _wait_durable(launch)
    return _outcome(launch, return_state)


async def run_flow_async(
    flow: Flow[Any, Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    return_state: bool,
    adopt: AdoptedRun | None = None,
) -> Any:
    import asyncio

    launch = _Launch(flow, args, kwargs, adopt)
    run = launch.run
    machine = Machine(run, "Flow", flow.retry_policy, _emit_flow_state, flow.timeout_seconds)
    if launch.validate(machine):
        context = _context(launch)
        token = flow_run_context.set(context)
        log = flow_run_logger(run)
        try:
            with context.task_runner:
                while True:
                    _begin(launch, machine)
                    if launch.parent is None and run.run_count == 1 and not launch.adopted:
                        await asyncio.to_thread(_started, launch)
                    if run.run_count == 1:
                        log.info("Beginning flow run %r for flow %r", run.name, flow.name)
                    if flow.on_running_hooks:
                        await call_hooks_async(flow.on_running_hooks, flow, run, run.state)
                    try:
                        try:
                            async with asyncio.timeout(flow.timeout_seconds):
                                value = await flow.fn(*args_of(launch), **kwargs_of(launch))
                        except TimeoutError as exc:
                            if flow.timeout_seconds is None:
                                raise
                            raise FlowRunTimeoutError() from exc
                        if flow.result_options is None:
                            delay = machine.succeeded(_final_state(value))
                        else:
                            delay = flow_succeeded(flow, machine, _final_state(value))
                    except BaseException as exc:
                        if suspended(run, exc):
                            break  # the server holds the run; this process ends it
                        delay = machine.failed(exc)
                        if isinstance(exc, asyncio.CancelledError):
                            raise
                    if delay is None:
                        break
                    log.warning("%s", run.state.message)
                    if delay:
                        await asyncio.sleep(delay)
                # Submitted task runs finish in threads: wait for them off the loop.
                if context.task_runner.has_outstanding():
                    await asyncio.to_thread(context.task_runner.wait_outstanding)
        finally:
            flow_run_context.reset(token)
    launch.finish_parent_task_run()
    hooks = hooks_for(flow, run.state)
    if hooks:
        await call_hooks_async(hooks, flow, run, run.state)
    if launch.parent is None:
        try:
            await asyncio.wait_for(asyncio.wrap_future(get_recorder().commit()), COMMIT_TIMEOUT)
        except Exception as exc:
            logger.error("Flow run %r: run records not yet written: %s", run.name, exc)
    return _outcome(launch, return_state)


def args_of(launch: _Launch) -> tuple[Any, ...]:
    """Positional arguments rebuilt from the validated parameters."""
    signature = launch.flow.signature
    args: list[Any] = []
    for name, parameter in signature.parameters.items():
        if parameter.kind is parameter.POSITIONAL_ONLY:
            args.append(launch.parameters[name])
        elif parameter.kind is parameter.VAR_POSITIONAL:
            args.extend(launch.parameters.get(name, ()))
    return tuple(args)


def kwargs_of(launch: _Launch) -> dict[str, Any]:
    """Keyword arguments rebuilt from the validated parameters."""
    kwargs: dict[str, Any] = {}
    for name, parameter in launch.flow.signature.parameters.items():
        if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
            if name in launch.parameters:
                kwargs[name] = launch.parameters[name]
        elif parameter.kind is parameter.VAR_KEYWORD:
            kwargs.update(launch.parameters.get(name, {}))
    return kwargs
