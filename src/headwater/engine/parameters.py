"""Flow parameters: binding call arguments, validating them against type hints, storing them.

Validation uses pydantic (strings coerced to ints, dicts to models...), but
pydantic is imported only when a value is not already of its annotated type,
so a flow called with well-typed arguments never pays for the import.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import inspect
import json
import typing
import uuid
from collections.abc import Callable
from pathlib import PurePath
from typing import Any

from headwater.exceptions import ParameterBindError, ParameterTypeError

_EMPTY = inspect.Parameter.empty
_SIMPLE = (int, float, str, bool, bytes)
_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def bind(
    fn: Callable[..., Any],
    signature: inspect.Signature,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> dict[str, Any]:
    """Call arguments as a parameters dict, defaults applied."""
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as exc:
        name = getattr(fn, "__name__", "function")
        raise ParameterBindError(
            f"Cannot call {name}{signature} with args {args!r} and kwargs {kwargs!r}: {exc}."
        ) from None
    bound.apply_defaults()
    return dict(bound.arguments)


def _resolve_annotation(fn: Callable[..., Any], annotation: Any) -> Any:
    """The annotation as a type; a string one that cannot be resolved is not validated."""
    if not isinstance(annotation, str):
        return annotation
    namespace = getattr(fn, "__globals__", {})
    try:
        return typing._eval_type(  # type: ignore[attr-defined]
            typing.ForwardRef(annotation), namespace, namespace
        )
    except Exception:
        return Any


class ParameterValidator:
    """Validates one flow's parameters; built once per flow, pydantic model built lazily."""

    def __init__(self, fn: Callable[..., Any], signature: inspect.Signature) -> None:
        self._fn = fn
        self._signature = signature
        self._annotations = {
            name: _resolve_annotation(fn, p.annotation)
            for name, p in signature.parameters.items()
            if p.kind not in _VARIADIC
        }
        self._model: Any = None

    def _trivially_valid(self, name: str, value: Any) -> bool:
        annotation = self._annotations.get(name, _EMPTY)
        if annotation is _EMPTY or annotation is Any or annotation is object:
            return True
        if annotation in _SIMPLE:
            return type(value) is annotation
        return False

    def validate(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """Coerced parameters; raises `ParameterTypeError` naming each bad one."""
        if all(self._trivially_valid(n, v) for n, v in parameters.items()):
            return parameters
        import pydantic

        model = self._pydantic_model(pydantic)
        checked = {n: v for n, v in parameters.items() if n in self._annotations}
        try:
            validated = model.model_validate(checked)
        except pydantic.ValidationError as exc:
            problems = []
            for error in exc.errors():
                location = ".".join(str(part) for part in error["loc"])
                problems.append(f"{location}: {error['msg']} (got {error.get('input')!r})")
            name = getattr(self._fn, "__name__", "flow")
            raise ParameterTypeError(
                f"Flow {name!r} received invalid parameters: " + "; ".join(problems)
            ) from None
        result = dict(parameters)
        for index, name in enumerate(checked):
            result[name] = getattr(validated, f"p{index}")
        return result

    def json_schema(self) -> dict[str, Any]:
        """The parameters' JSON schema (what a deployment stores and the server checks runs
        against). A parameter whose type has no JSON schema accepts any value."""
        import warnings

        import pydantic

        properties: dict[str, Any] = {}
        required: list[str] = []
        parameters = self._signature.parameters
        for name, annotation in self._annotations.items():
            default = parameters[name].default
            field: Any = Any if annotation is _EMPTY else annotation
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    schema = pydantic.TypeAdapter(field).json_schema()
            except (pydantic.PydanticUserError, pydantic.errors.PydanticSchemaGenerationError):
                schema = {}
            schema = {"title": name, **schema}
            if default is _EMPTY:
                required.append(name)
            else:
                with contextlib.suppress(TypeError, ValueError):  # not JSON: no default shown
                    schema["default"] = json.loads(json.dumps(default))
            properties[name] = schema
        document: dict[str, Any] = {"title": "Parameters", "type": "object"}
        document["properties"] = properties
        if required:
            document["required"] = required
        # Nested models' definitions are referenced as #/$defs/...: hoist them.
        defs: dict[str, Any] = {}
        for schema in properties.values():
            defs.update(schema.pop("$defs", {}))
        if defs:
            document["$defs"] = defs
        return document

    def _pydantic_model(self, pydantic: Any) -> Any:
        if self._model is None:
            fields: dict[str, Any] = {}
            parameters = self._signature.parameters
            for index, (name, annotation) in enumerate(self._annotations.items()):
                default = parameters[name].default
                fields[f"p{index}"] = (
                    Any if annotation is _EMPTY else annotation,
                    pydantic.Field(... if default is _EMPTY else default, alias=name),
                )
            self._model = pydantic.create_model(
                "Parameters",
                __config__=pydantic.ConfigDict(arbitrary_types_allowed=True),
                **fields,
            )
        return self._model


def _json_default(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, PurePath)):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return repr(value)


def jsonable(parameters: dict[str, Any]) -> dict[str, Any]:
    """Parameters as JSON values, for the store (anything else is stored as its repr)."""
    try:
        result: dict[str, Any] = json.loads(json.dumps(parameters, default=_json_default))
        return result
    except (TypeError, ValueError):
        return {name: repr(value) for name, value in parameters.items()}
