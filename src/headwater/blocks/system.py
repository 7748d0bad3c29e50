"""The `Secret` block: a value encrypted at rest, read back explicitly, masked in run logs.

Example:
    >>> from headwater.blocks.system import Secret
    >>> Secret(value="s3cr3t-token").save("github-token")
    >>> token = Secret.load("github-token").get()   # "s3cr3t-token"

The server (or, in embedded mode, this process on the embedded store)
encrypts the value with a key kept outside the database; see
docs/variables-and-secrets.md. Once a process has read a secret's value, that
value is replaced by ******** in every log record its runs produce.
"""

from __future__ import annotations

import uuid
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from headwater.exceptions import Conflict

__all__ = ["Secret", "SecretAlreadyExists", "SecretStr"]

T = TypeVar("T")

MASK = "**********"


class SecretAlreadyExists(Conflict, ValueError):
    """`Secret.save` of a name that exists, without `overwrite=True`."""


class SecretStr(Generic[T]):
    """A value that prints masked; `get_secret_value()` returns it (like pydantic's SecretStr)."""

    __slots__ = ("_value",)

    def __init__(self, value: T) -> None:
        self._value = value

    def get_secret_value(self) -> T:
        return self._value

    def __repr__(self) -> str:
        return f"SecretStr('{MASK}')"

    def __str__(self) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretStr) and other._value == self._value

    def __hash__(self) -> int:
        return hash(repr(self._value))

    def __reduce__(self) -> tuple[Any, ...]:
        return (SecretStr, (self._value,))


def _client() -> Any:
    from headwater.client.api import get_client

    return get_client()


def _path(name: str) -> str:
    return f"/secrets/{quote(name, safe='')}"


def _check_name(name: str) -> str:
    from headwater.schemas.variables import check_name

    if not isinstance(name, str):
        raise TypeError(f"A secret name is a string, not {type(name).__name__}")
    try:
        return check_name(name, "Secret")
    except ValueError as exc:
        raise ValueError(f"{exc}.") from None


class Secret(Generic[T]):
    """A secret value: a string, or any JSON value (a dict of credentials, say).

    `value` is a `SecretStr`, which prints as asterisks; `get()` returns the value.
    """

    def __init__(self, value: T | SecretStr[T] | Any) -> None:
        if hasattr(value, "get_secret_value"):  # ours, or pydantic's SecretStr
            value = value.get_secret_value()
        self.value: SecretStr[T] = SecretStr(value)

    def __repr__(self) -> str:
        return f"Secret(value={self.value!r})"

    def get(self) -> T:
        """The secret's value (and from now on, masked in this process's run logs)."""
        value = self.value.get_secret_value()
        from headwater.logging.run_logger import mask_secret

        mask_secret(value)
        return value

    def save(self, name: str, overwrite: bool = False) -> uuid.UUID:
        """Store the value as the secret `name`; its id.

        Raises:
            SecretAlreadyExists: `name` exists and not `overwrite` (a ValueError).
        """
        from headwater.schemas.variables import check_json_value

        _check_name(name)
        value = self.value.get_secret_value()
        try:
            check_json_value(value, "secret value")
        except ValueError as exc:
            raise ValueError(f"Cannot save secret {name!r}: {exc}.") from None
        client = _client()
        if overwrite:
            body = client.request("PUT", _path(name), json={"value": value})
        else:
            try:
                body = client.request("POST", "/secrets", json={"name": name, "value": value})
            except Conflict:
                raise SecretAlreadyExists(
                    f"Secret {name!r} already exists; use overwrite=True to replace its value."
                ) from None
        return uuid.UUID(body["id"])

    async def asave(self, name: str, overwrite: bool = False) -> uuid.UUID:
        """`save`, for async code (the request runs in a worker thread)."""
        import asyncio

        return await asyncio.to_thread(self.save, name, overwrite)

    @classmethod
    def load(cls, name: str) -> Secret[Any]:
        """The secret `name`, with its value decrypted (ObjectNotFound if there is none)."""
        _check_name(name)
        body = _client().request("GET", _path(name) + "/value")
        value = body["value"]
        from headwater.logging.run_logger import mask_secret

        mask_secret(value)
        return cls(value)

    @classmethod
    async def aload(cls, name: str) -> Secret[Any]:
        """`load`, for async code."""
        import asyncio

        return await asyncio.to_thread(cls.load, name)

    @classmethod
    def delete(cls, name: str) -> None:
        """Delete the secret `name` (ObjectNotFound if there is none)."""
        _check_name(name)
        _client().request("DELETE", _path(name))
