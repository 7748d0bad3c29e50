"""Result serializers: how a persisted result becomes bytes and back.

Pass one to `@task(result_serializer=...)` or `@flow(result_serializer=...)`, by
name or as an object:

    @task(persist_result=True, result_serializer="compressed/json")
    def summary() -> dict[str, int]: ...

Names: "pickle" (the default), "cloudpickle", "json", and "compressed/<inner>"
(zlib around any of them, e.g. "compressed/pickle"). A record remembers the
name of the serializer that wrote it and is read back with that one.
"""

from __future__ import annotations

import json
import pickle
from typing import Any

from headwater.exceptions import SerializationError

__all__ = [
    "CloudPickleSerializer",
    "CompressedSerializer",
    "JSONSerializer",
    "PickleSerializer",
    "Serializer",
    "get_serializer",
]


class Serializer:
    """Turns values into bytes and back. Subclasses set `type` and implement both methods."""

    type: str = "custom"

    def dumps(self, value: Any) -> bytes:
        raise NotImplementedError

    def loads(self, data: bytes) -> Any:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash(self.type)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class PickleSerializer(Serializer):
    """The standard library's pickle, with cloudpickle for what it cannot pickle.

    Plain pickle is several times faster for ordinary values; lambdas, local
    classes and the like go through cloudpickle, whose output pickle reads.
    """

    type = "pickle"

    def dumps(self, value: Any) -> bytes:
        try:
            return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            import cloudpickle

            data: bytes = cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            return data

    def loads(self, data: bytes) -> Any:
        return pickle.loads(data)


class CloudPickleSerializer(Serializer):
    """cloudpickle: functions and classes defined in `__main__` or locally, by value."""

    type = "cloudpickle"

    def dumps(self, value: Any) -> bytes:
        import cloudpickle

        data: bytes = cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        return data

    def loads(self, data: bytes) -> Any:
        return pickle.loads(data)


def _json_default(value: Any) -> Any:
    """JSON for common non-JSON values (written one way: they read back as JSON types)."""
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):
        return model_dump(mode="json")
    import dataclasses
    import datetime
    import decimal
    import pathlib
    import uuid

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, decimal.Decimal, pathlib.PurePath)):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


class JSONSerializer(Serializer):
    """JSON. Values come back as JSON types (dict, list, str, int, float, bool, None).

    Pydantic models, dataclasses, datetimes, UUIDs, paths and sets are written
    as their JSON form.
    """

    type = "json"

    def dumps(self, value: Any) -> bytes:
        return json.dumps(value, default=_json_default, separators=(",", ":")).encode()

    def loads(self, data: bytes) -> Any:
        return json.loads(data)


class CompressedSerializer(Serializer):
    """Another serializer's bytes, compressed with zlib."""

    def __init__(self, serializer: Serializer | str = "pickle", level: int = 6) -> None:
        self.serializer = get_serializer(serializer)
        self.level = level
        self.type = f"compressed/{self.serializer.type}"

    def dumps(self, value: Any) -> bytes:
        import zlib

        return zlib.compress(self.serializer.dumps(value), self.level)

    def loads(self, data: bytes) -> Any:
        import zlib

        return self.serializer.loads(zlib.decompress(data))

    def __repr__(self) -> str:
        return f"CompressedSerializer({self.serializer!r})"


_BY_NAME: dict[str, type[Serializer]] = {
    "pickle": PickleSerializer,
    "cloudpickle": CloudPickleSerializer,
    "json": JSONSerializer,
}


def get_serializer(spec: Serializer | str) -> Serializer:
    """The serializer for a name ("json", "compressed/pickle", ...) or a `Serializer`."""
    if isinstance(spec, Serializer):
        return spec
    if not isinstance(spec, str):
        raise TypeError(
            f"result_serializer must be a name or a Serializer, got {spec!r}; "
            f"use one of {serializer_names()}."
        )
    if spec.startswith("compressed/"):
        return CompressedSerializer(get_serializer(spec.removeprefix("compressed/")))
    kind = _BY_NAME.get(spec)
    if kind is None:
        raise SerializationError(
            f"Unknown result serializer {spec!r}; use one of {serializer_names()} "
            "or a headwater.serializers.Serializer object."
        )
    return kind()


def serializer_names() -> list[str]:
    names = sorted(_BY_NAME)
    return names + [f"compressed/{name}" for name in names]
