"""Argument wrappers for task calls: `unmapped`, `allow_failure`, `quote`."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

T = TypeVar("T")


class _Wrapper(Generic[T]):
    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def unwrap(self) -> T:
        return self.value

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.value!r})"


class unmapped(_Wrapper[T]):
    """Pass a value whole to every call of `.map()` instead of iterating over it.

    Example:
        fetch.map(urls, unmapped(session))
    """

    def __getitem__(self, _index: int) -> T:
        return self.value


class allow_failure(_Wrapper[T]):
    """Run the downstream task even if this upstream future failed.

    The downstream task receives the upstream's exception in place of its result.
    """


class quote(_Wrapper[T]):
    """Pass a value as is: futures and states inside it are not resolved."""


def unwrap_static(value: Any) -> Any:
    """The wrapped value of `unmapped`/`quote`/`allow_failure`, or the value itself."""
    return value.value if isinstance(value, _Wrapper) else value
