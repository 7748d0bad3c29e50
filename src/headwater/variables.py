"""Variables: named JSON values for configuration, shared by every run (Prefect 3's API).

Example:
    >>> from headwater.variables import Variable
    >>> Variable.set("batch_size", 500)
    >>> Variable.get("batch_size", default=100)
    500
    >>> Variable.set("batch_size", 1000, overwrite=True)
    >>> Variable.unset("batch_size")
    True

Values are JSON: strings, numbers, booleans, None, lists and dicts (at most
64 KiB encoded). Names are lowercase letters, digits, underscores and dashes.
They are stored by the backend in use: the server at HEADWATER_API_URL, or the
embedded store.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
from typing import Any
from urllib.parse import quote

from headwater.exceptions import Conflict, ObjectNotFound

__all__ = ["Variable", "VariableAlreadyExists"]


class VariableAlreadyExists(Conflict, ValueError):
    """`Variable.set` of a name that exists, without `overwrite=True`."""


def _client() -> Any:
    from headwater.client.api import get_client

    return get_client()


def _path(name: str) -> str:
    return f"/variables/{quote(name, safe='')}"


def _check_name(name: str) -> str:
    from headwater.schemas.variables import check_name

    if not isinstance(name, str):
        raise TypeError(f"A variable name is a string, not {type(name).__name__}")
    try:
        return check_name(name, "Variable")
    except ValueError as exc:
        raise ValueError(f"{exc}.") from None


def _check_value(name: str, value: Any) -> Any:
    """`value` as it will be stored (tuples become lists), or a ValueError saying why not."""
    from headwater.schemas.variables import check_json_value

    # What is not JSON stays as it is: the check below says what is wrong with it.
    with contextlib.suppress(TypeError, ValueError, RecursionError):
        value = json.loads(json.dumps(value))
    try:
        return check_json_value(value, "value")
    except ValueError as exc:
        raise ValueError(f"Cannot set variable {name!r}: {exc}.") from None


@dataclasses.dataclass(frozen=True)
class Variable:
    """A stored variable: its name, JSON value and tags.

    Use the class methods: `Variable.get`, `Variable.set`, `Variable.unset`,
    and their async twins `aget`, `aset`, `aunset`.
    """

    name: str
    value: Any = None
    tags: list[str] = dataclasses.field(default_factory=list)
    created: dt.datetime | None = None
    updated: dt.datetime | None = None

    @classmethod
    def _from_api(cls, body: dict[str, Any]) -> Variable:
        return cls(
            name=body["name"],
            value=body["value"],
            tags=list(body.get("tags") or []),
            created=dt.datetime.fromisoformat(body["created"]),
            updated=dt.datetime.fromisoformat(body["updated"]),
        )

    @classmethod
    def get(cls, name: str, default: Any = None) -> Any:
        """The value of the variable `name`, or `default` if there is no such variable."""
        _check_name(name)
        try:
            body = _client().request("GET", _path(name))
        except ObjectNotFound:
            return default
        return body["value"]

    @classmethod
    def set(
        cls,
        name: str,
        value: Any,
        overwrite: bool = False,
        tags: list[str] | None = None,
    ) -> Variable:
        """Store `value` (JSON) as the variable `name`, and return the variable.

        Args:
            overwrite: replace the value of an existing variable (without it, an
                existing name raises `VariableAlreadyExists`, a ValueError).
            tags: the variable's tags; when overwriting, None keeps its tags.
        """
        _check_name(name)
        value = _check_value(name, value)
        client = _client()
        if overwrite:
            body = client.request(
                "PUT", _path(name), json={"value": value, "tags": None if tags is None else tags}
            )
            return cls._from_api(body)
        try:
            body = client.request(
                "POST", "/variables", json={"name": name, "value": value, "tags": tags or []}
            )
        except Conflict:
            raise VariableAlreadyExists(
                f"Variable {name!r} already exists; use overwrite=True to replace its value."
            ) from None
        return cls._from_api(body)

    @classmethod
    def unset(cls, name: str) -> bool:
        """Delete the variable `name`; whether it existed."""
        _check_name(name)
        try:
            _client().request("DELETE", _path(name))
        except ObjectNotFound:
            return False
        return True

    @classmethod
    async def aget(cls, name: str, default: Any = None) -> Any:
        """`get`, for async code (the request runs in a worker thread)."""
        import asyncio

        return await asyncio.to_thread(cls.get, name, default)

    @classmethod
    async def aset(
        cls,
        name: str,
        value: Any,
        overwrite: bool = False,
        tags: list[str] | None = None,
    ) -> Variable:
        """`set`, for async code."""
        import asyncio

        return await asyncio.to_thread(cls.set, name, value, overwrite, tags)

    @classmethod
    async def aunset(cls, name: str) -> bool:
        """`unset`, for async code."""
        import asyncio

        return await asyncio.to_thread(cls.unset, name)
