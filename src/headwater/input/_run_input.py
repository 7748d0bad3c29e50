"""`RunInput`: the pydantic model a paused run waits for, or one run sends another."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any, ClassVar, Self

import pydantic


@dataclasses.dataclass(frozen=True, slots=True)
class RunInputMetadata:
    """Where a received input came from: its key, its sender, the run it was sent to."""

    key: str
    sender: str | None
    receiver: uuid.UUID


class RunInput(pydantic.BaseModel):
    """Input for a flow run: a pydantic model whose JSON schema becomes the resume form.

    Example:
        >>> class Approval(RunInput):
        ...     approved: bool
        ...     reviewer: str = "anyone"
        >>> approval = pause_flow_run(wait_for_input=Approval)  # inside a flow
    """

    model_config = pydantic.ConfigDict(extra="forbid")

    #: Markdown shown to whoever resumes the run (`description` of the pause).
    description: ClassVar[str | None] = None

    _metadata: RunInputMetadata | None = pydantic.PrivateAttr(default=None)

    @property
    def metadata(self) -> RunInputMetadata | None:
        """Key, sender and receiver of an input received with `receive_input`; else None."""
        return self._metadata

    @classmethod
    def with_initial_data(cls, description: str | None = None, **defaults: Any) -> type[Self]:
        """A subclass whose fields default to `defaults` (the form's initial values).

        Example:
            >>> Approval.with_initial_data(reviewer="ops", description="Ship it?")
        """
        unknown = sorted(set(defaults) - set(cls.model_fields))
        if unknown:
            known = ", ".join(cls.model_fields) or "none"
            raise ValueError(f"{cls.__name__} has no field {unknown[0]!r}; its fields: {known}.")
        fields: dict[str, Any] = {
            name: (cls.model_fields[name].annotation, value) for name, value in defaults.items()
        }
        model: type[Self] = pydantic.create_model(cls.__name__, __base__=cls, **fields)
        model.__doc__ = cls.__doc__
        if description is not None:
            model.description = description
        return model


class _Value(RunInput):
    """The wrapper of a plain type (`wait_for_input=int`): the form has one field, `value`."""


def input_model(input_type: Any) -> tuple[type[pydantic.BaseModel], bool]:
    """The model for `input_type`, and whether values come wrapped in its `value` field.

    A pydantic model (a `RunInput` or any BaseModel) is used as it is; any other type
    (`str`, `int`, `list[str]`, ...) becomes a model with one field, `value`.
    """
    if isinstance(input_type, type) and issubclass(input_type, pydantic.BaseModel):
        return input_type, False
    name = getattr(input_type, "__name__", "Input")
    model = pydantic.create_model(f"{name.capitalize()}Input", __base__=_Value, value=input_type)
    return model, True


def description_of(model: type[pydantic.BaseModel]) -> str | None:
    description = getattr(model, "description", None)
    return description if isinstance(description, str) else None


def load(input_type: Any, data: Any) -> Any:
    """`data` (JSON from the store) as an instance of `input_type` (validated)."""
    model, wrapped = input_model(input_type)
    instance = model.model_validate(data)
    return instance.value if wrapped else instance  # type: ignore[attr-defined]


def dump(value: Any) -> Any:
    """`value` as JSON data the way `load` reads it: a model as its fields, any other value
    (pydantic-serialisable) wrapped as `{"value": ...}`."""
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json")
    return {"value": pydantic.TypeAdapter(type(value)).dump_python(value, mode="json")}
