"""`send_input` and `receive_input`: typed values between flow runs, kept in the store."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

from headwater.input._run_input import RunInputMetadata, dump, input_model, load

#: `receive_input` stops sending the keys it has seen past this many (the oldest are
#: dropped from the exclusion list; the server returns inputs oldest first).
_MAX_EXCLUDED = 10_000
#: The longest one long-poll request is held (within the client's 30 s read timeout).
_MAX_WAIT = 20.0


def _current_flow_run_id() -> uuid.UUID | None:
    from headwater.context import flow_run_context

    context = flow_run_context.get()
    return None if context is None else context.flow_run.id


def _prefix_for(input_type: Any) -> str:
    name = getattr(input_type, "__name__", None) or type(input_type).__name__
    return f"{name.lower()}-auto"


def _uuid(value: uuid.UUID | str, what: str) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        raise ValueError(f"{what} must be a flow run id (a UUID), not {value!r}.") from None


def send_input(
    run_input: Any,
    flow_run_id: uuid.UUID | str,
    sender: str | None = None,
    key_prefix: str | None = None,
) -> None:
    """Send `run_input` (a `RunInput`, any pydantic model or JSON-able value) to a flow run,
    which reads it with `receive_input(type(run_input))`.

    The key is `key_prefix` (default: the type's name, lowercase, + "-auto") plus a
    random suffix. `sender` defaults to the flow run sending it.

    Example:
        >>> send_input(Greeting(text="hi"), flow_run_id=other_run_id)
    """
    from headwater.client.api import get_client

    receiver = _uuid(flow_run_id, "flow_run_id")
    if sender is None:
        current = _current_flow_run_id()
        sender = None if current is None else f"headwater.flow-run.{current}"
    prefix = key_prefix or _prefix_for(type(run_input))
    get_client().request(
        "POST",
        f"/flow_runs/{receiver}/input",
        json={"key": f"{prefix}-{uuid.uuid4().hex}", "value": dump(run_input), "sender": sender},
    )


class GetInputHandler:
    """Iterates over the inputs of a type a flow run receives, as they arrive.

    `for value in receive_input(int, timeout=60): ...` (or `async for`) yields each
    input once, oldest first; iteration ends when nothing new arrives within
    `timeout` seconds (`raise_timeout_error=True`: raises TimeoutError instead).
    `next()` returns the next one.
    """

    def __init__(
        self,
        input_type: Any,
        *,
        timeout: float | None,
        poll_interval: float,
        raise_timeout_error: bool,
        exclude_keys: set[str] | None,
        key_prefix: str | None,
        flow_run_id: uuid.UUID | str | None,
        with_metadata: bool,
    ) -> None:
        run_id = flow_run_id if flow_run_id is not None else _current_flow_run_id()
        if run_id is None:
            raise ValueError(
                "receive_input() outside a flow run needs flow_run_id= (the run whose "
                "inputs to read)."
            )
        input_model(input_type)  # a type pydantic cannot model fails here, not later
        self.input_type = input_type
        self.flow_run_id = _uuid(run_id, "flow_run_id")
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.raise_timeout_error = raise_timeout_error
        self.key_prefix = key_prefix or _prefix_for(input_type)
        self.with_metadata = with_metadata
        self._seen: dict[str, None] = dict.fromkeys(exclude_keys or ())

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        from headwater.client.api import get_client

        client = get_client()
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            wait = self.poll_interval if remaining is None else min(self.poll_interval, remaining)
            found = client.request(
                "POST",
                f"/flow_runs/{self.flow_run_id}/input/filter",
                json={
                    "prefix": self.key_prefix,
                    "exclude_keys": list(self._seen)[-_MAX_EXCLUDED:],
                    "limit": 1,
                    "wait": max(0.0, min(wait, _MAX_WAIT)),
                },
            )
            if found:
                return self._value(found[0])
            if remaining is not None and remaining <= 0:
                if self.raise_timeout_error:
                    raise TimeoutError(
                        f"No input with key prefix {self.key_prefix!r} arrived for flow run "
                        f"{self.flow_run_id} within {self.timeout:g} second(s)."
                    )
                raise StopIteration

    def next(self) -> Any:
        return next(self)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        try:
            return await asyncio.to_thread(next, self)
        except StopIteration:
            raise StopAsyncIteration from None

    def _value(self, item: dict[str, Any]) -> Any:
        self._seen[item["key"]] = None
        value = load(self.input_type, item["value"])
        metadata = RunInputMetadata(
            key=item["key"], sender=item.get("sender"), receiver=self.flow_run_id
        )
        if hasattr(value, "_metadata"):
            value._metadata = metadata
        if self.with_metadata:
            return ReceivedInput(value, metadata)
        return value


class ReceivedInput:
    """An input with where it came from (`receive_input(..., with_metadata=True)`)."""

    __slots__ = ("metadata", "value")

    def __init__(self, value: Any, metadata: RunInputMetadata) -> None:
        self.value = value
        self.metadata = metadata

    def __repr__(self) -> str:
        return f"ReceivedInput(value={self.value!r}, metadata={self.metadata!r})"


def receive_input(
    input_type: Any,
    timeout: float | None = 3600,
    poll_interval: float = 10,
    raise_timeout_error: bool = False,
    exclude_keys: set[str] | None = None,
    key_prefix: str | None = None,
    flow_run_id: uuid.UUID | str | None = None,
    with_metadata: bool = False,
) -> GetInputHandler:
    """The inputs of `input_type` sent to a flow run (default: the current one) with
    `send_input`, each once, as they arrive.

    Example:
        >>> for greeting in receive_input(Greeting, timeout=60):
        ...     print(greeting.text, greeting.metadata.sender)
    """
    if poll_interval <= 0:
        raise ValueError(f"poll_interval must be positive, not {poll_interval!r}.")
    return GetInputHandler(
        input_type,
        timeout=timeout,
        poll_interval=poll_interval,
        raise_timeout_error=raise_timeout_error,
        exclude_keys=exclude_keys,
        key_prefix=key_prefix,
        flow_run_id=flow_run_id,
        with_metadata=with_metadata,
    )
