"""State-change hooks: user functions called as `hook(flow_or_task, run, state)`.

A failing hook is logged and never changes the run's state.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from typing import Any

from headwater.core.states import State, StateType

logger = logging.getLogger("headwater.engine.hooks")

Hook = Callable[[Any, Any, State], Any]

_BY_TYPE = {
    StateType.COMPLETED: "on_completion",
    StateType.FAILED: "on_failure",
    StateType.CRASHED: "on_crashed",
    StateType.CANCELLED: "on_cancellation",
}


class StateHookDecorators:
    """`@thing.on_completion`-style decorators: each adds the function to a hook list."""

    on_completion_hooks: list[Hook]
    on_failure_hooks: list[Hook]
    on_running_hooks: list[Hook]

    def on_completion(self, fn: Hook) -> Hook:
        self.on_completion_hooks.append(fn)
        return fn

    def on_failure(self, fn: Hook) -> Hook:
        self.on_failure_hooks.append(fn)
        return fn

    def on_running(self, fn: Hook) -> Hook:
        self.on_running_hooks.append(fn)
        return fn


def hooks_for(owner: Any, state: State) -> Sequence[Hook]:
    """The hooks of `owner` (a Flow or Task) that `state` triggers."""
    attribute = _BY_TYPE.get(state.type)
    if attribute is None:
        return ()
    hooks: Sequence[Hook] = getattr(owner, f"{attribute}_hooks", ())
    return hooks


def call_hooks(hooks: Sequence[Hook], owner: Any, run: Any, state: State) -> None:
    for hook in hooks:
        try:
            outcome = hook(owner, run, state)
            if inspect.isawaitable(outcome):
                import asyncio

                asyncio.run(_await(outcome))
        except Exception:
            logger.exception(
                "Hook %r raised an exception; the run's state is unchanged.",
                getattr(hook, "__name__", hook),
            )


async def call_hooks_async(hooks: Sequence[Hook], owner: Any, run: Any, state: State) -> None:
    for hook in hooks:
        try:
            outcome = hook(owner, run, state)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:
            logger.exception(
                "Hook %r raised an exception; the run's state is unchanged.",
                getattr(hook, "__name__", hook),
            )


async def _await(awaitable: Any) -> Any:
    return await awaitable
