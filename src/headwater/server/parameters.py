"""Checking a deployment's parameters against its JSON schema (jsonschema, Draft 2020-12)."""

from __future__ import annotations

from typing import Any

from headwater.exceptions import InvalidParameters


def check_parameters(schema: dict[str, Any], parameters: dict[str, Any], *, complete: bool) -> None:
    """Raise `InvalidParameters` naming each parameter that does not match `schema`.

    `complete=False` (a deployment's defaults) lets required parameters be
    missing: they can come with each run. A schema that is not valid JSON
    schema is refused too, so that a bad deployment cannot be stored.
    """
    if not schema:
        return
    import jsonschema

    if not complete:
        schema = {key: value for key, value in schema.items() if key != "required"}
    try:
        validator_class = jsonschema.validators.validator_for(schema)
        validator_class.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise InvalidParameters(
            f"parameter_schema is not a valid JSON schema: {exc.message}; derive it from the "
            "flow's signature (headwater does, in `serve`/`deploy`)."
        ) from None
    problems = []
    for error in sorted(validator_class(schema).iter_errors(parameters), key=str):
        where = ".".join(str(part) for part in error.absolute_path)
        if error.validator == "required":
            problems.append(f"{error.message} (give it with --param or `parameters=`)")
        elif where:
            problems.append(f"parameter {where!r}: {error.message}")
        else:
            problems.append(error.message)
    if problems:
        raise InvalidParameters("Invalid parameters: " + "; ".join(problems[:10]) + ".")
