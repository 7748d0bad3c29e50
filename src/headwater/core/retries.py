"""Retry policy: how long to wait before the next attempt. Pure functions."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

RetryDelay = float | int | Sequence[float | int] | Callable[[int], Sequence[float | int]] | None


def exponential_backoff(backoff_factor: float) -> Callable[[int], list[float]]:
    """Delays for `retries` attempts that double each time: factor, 2*factor, 4*factor...

    Example:
        @task(retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=1))
    """
    if backoff_factor < 0:
        raise ValueError(
            f"backoff_factor must be >= 0, got {backoff_factor!r}; pass a number of seconds."
        )

    def delays(retries: int) -> list[float]:
        return [backoff_factor * 2**attempt for attempt in range(retries)]

    return delays


def resolve_delays(delay: RetryDelay, retries: int) -> list[float]:
    """Turn a `retry_delay_seconds` option into one delay per retry."""
    if delay is None:
        return [0.0] * retries
    if callable(delay):
        delay = delay(retries)
    if isinstance(delay, (int, float)):
        if delay < 0:
            raise ValueError(f"retry_delay_seconds must be >= 0, got {delay!r}.")
        return [float(delay)] * retries
    values = [float(d) for d in delay]
    if any(d < 0 for d in values):
        raise ValueError(f"retry_delay_seconds must all be >= 0, got {list(delay)!r}.")
    if not values:
        return [0.0] * retries
    # Like Prefect: a list shorter than `retries` repeats its last value.
    return [values[min(i, len(values) - 1)] for i in range(retries)]


def delay_for_attempt(delays: list[float], attempt: int, jitter_factor: float | None) -> float:
    """The delay before retry number `attempt` (0-based), with optional jitter.

    Jitter adds up to `jitter_factor * delay` at random, never subtracts, so a
    configured delay is a lower bound users can rely on.
    """
    if not delays:
        return 0.0
    base = delays[min(attempt, len(delays) - 1)]
    if jitter_factor:
        base += random.uniform(0, jitter_factor * base)
    return base
