"""`.map()` argument expansion: which arguments are iterated and which are passed whole."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from headwater.annotations import quote, unmapped
from headwater.exceptions import MappingLengthMismatch, MappingMissingIterable
from headwater.futures import HeadwaterFuture

if TYPE_CHECKING:
    from headwater.tasks import Task

_NOT_MAPPED = (str, bytes, bytearray, dict)


def _mapped_values(value: Any) -> list[Any] | None:
    """The items to map over, or None when `value` is passed whole to every call."""
    if isinstance(value, (unmapped, quote)):
        return None
    if isinstance(value, HeadwaterFuture):
        value = value.result()
    if isinstance(value, _NOT_MAPPED):
        return None
    try:
        return list(value)
    except TypeError:
        return None


def expand(
    task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
    """Yield (args, kwargs) for each call of a `.map()`."""
    mapped_args = [_mapped_values(a) for a in args]
    mapped_kwargs = {k: _mapped_values(v) for k, v in kwargs.items()}
    lengths = {
        **{f"argument {i}": len(v) for i, v in enumerate(mapped_args) if v is not None},
        **{repr(k): len(v) for k, v in mapped_kwargs.items() if v is not None},
    }
    if not lengths:
        raise MappingMissingIterable(
            f"{task.name}.map() got no iterable argument to map over; pass a list (or other "
            "iterable) for at least one parameter, or call the task directly."
        )
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{name} has {n}" for name, n in lengths.items())
        raise MappingLengthMismatch(
            f"{task.name}.map() got iterables of different lengths ({detail}); make them the "
            "same length or wrap the ones to pass whole in unmapped(...)."
        )
    count = next(iter(lengths.values()))
    static_args = [a.value if isinstance(a, unmapped) else a for a in args]
    static_kwargs = {k: v.value if isinstance(v, unmapped) else v for k, v in kwargs.items()}
    for index in range(count):
        call_args = tuple(
            static_args[i] if items is None else items[index] for i, items in enumerate(mapped_args)
        )
        call_kwargs = {
            k: static_kwargs[k] if items is None else items[index]
            for k, items in mapped_kwargs.items()
        }
        yield call_args, call_kwargs
