"""Infrastructure plugins: how a worker turns a flow run into a running process.

A work pool has a type ("process", later "docker", "kubernetes", ...) that
names an `Infrastructure` plugin, and a *job template*, by default the
plugin's own:

    {
        "job_configuration": {"env": "{{ env }}", "working_dir": "{{ working_dir }}", ...},
        "variables": {"type": "object", "properties": {"env": {...}, ...}},  # a JSON schema
    }

The variables are what deployments and runs may set (`job_variables`); the
job configuration is what the plugin receives, with each `{{ name }}`
placeholder replaced by the variable's value (`render_job_configuration`).
A pool's template can be edited to change defaults, hide variables behind
fixed values, or add variables of its own.

Plugins are found by type: "process" is built in; other packages register
classes under the entry-point group "headwater.infrastructure":

    [project.entry-points."headwater.infrastructure"]
    docker = "headwater_docker:DockerInfrastructure"

Validation of variables is done here against the template's JSON schema (the
subset that templates use: types, enum/const, anyOf/oneOf/allOf, properties,
required, additionalProperties, items, bounds and lengths, local `$ref`s),
without a JSON-schema dependency.
"""

from __future__ import annotations

import abc
import builtins
import copy
import importlib
import json
import operator
import re
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, Field

from headwater.core.errors import HeadwaterError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

__all__ = [
    "ENTRY_POINT_GROUP",
    "PROCESS_JOB_CONFIGURATION",
    "Handle",
    "Infrastructure",
    "JobTemplateError",
    "ProcessVariables",
    "UnknownInfrastructureType",
    "check_job_variables",
    "default_base_job_template",
    "get_infrastructure",
    "infrastructure_types",
    "job_template",
    "render_job_configuration",
    "require_known_type",
    "validate_job_template",
]

#: The entry-point group where packages register infrastructure plugins (name = type).
ENTRY_POINT_GROUP = "headwater.infrastructure"

#: Built-in types, imported only when a worker needs the class itself.
_BUILTIN = {"process": "headwater.worker.process:ProcessInfrastructure"}

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


class JobTemplateError(HeadwaterError, ValueError):
    """A job template is malformed, or job variables do not fit its schema."""


class UnknownInfrastructureType(HeadwaterError, ValueError):
    """No infrastructure plugin is installed for a work pool type."""


class Handle(Protocol):
    """A started flow run's process, as its infrastructure knows it."""

    @property
    def identifier(self) -> str:
        """Where the run executes, e.g. "host:pid" or a container id (for messages and logs)."""
        ...

    def poll(self) -> int | None:
        """The exit code once the process has ended, else None; never blocks."""
        ...


class Infrastructure(abc.ABC):
    """A kind of infrastructure that runs flow runs: subclass it to add one.

    Attributes:
        type: the work pool type this class serves ("process").
        Variables: a pydantic model of the job variables; its JSON schema is the
            `variables` of the default job template (use `extra="forbid"` so
            that a misspelt variable is an error).
        job_configuration: the default template's job configuration, with
            `{{ variable }}` placeholders.

    Example:
        >>> class Docker(Infrastructure):
        ...     type = "docker"
        ...     Variables = DockerVariables
        ...     job_configuration = {"image": "{{ image }}", "env": "{{ env }}"}
        ...     def start(self, flow_run_id, configuration, env): ...
        ...     def kill(self, handle, grace_seconds): ...
    """

    type: ClassVar[str]
    Variables: ClassVar[builtins.type[BaseModel]]
    job_configuration: ClassVar[dict[str, Any]]

    @classmethod
    def base_job_template(cls) -> dict[str, Any]:
        """The default job template of work pools of this type."""
        return job_template(cls.Variables, cls.job_configuration)

    @abc.abstractmethod
    def start(self, flow_run_id: str, configuration: dict[str, Any], env: dict[str, str]) -> Handle:
        """Start the flow run `flow_run_id` and return at once.

        Args:
            flow_run_id: the run to execute (32 hex digits).
            configuration: the pool's job configuration rendered with the run's
                variables (`render_job_configuration`).
            env: variables the run's process needs on top of the configuration's
                (the API URL, the run id and its claim token); they win over the
                configuration's `env` on conflicts.
        """

    @abc.abstractmethod
    def kill(self, handle: Handle, grace_seconds: float) -> None:
        """Stop a started run: ask it to stop (SIGTERM or the like), force it after
        `grace_seconds`. Returns once the process is gone; a process already gone is
        not an error."""


# -- The process type's template (its class lives in worker/process.py) ------------------


class ProcessVariables(BaseModel):
    """Job variables of the `process` type: a flow run in a subprocess of the worker."""

    model_config = ConfigDict(extra="forbid", title="process")

    env: dict[str, str] = Field(
        default={},
        description="Environment variables of the flow run's process, on top of the worker's own.",
    )
    working_dir: str | None = Field(
        default=None,
        description="Directory the process starts in; default: the deployment's path, "
        "else the worker's working directory.",
    )
    command: str | None = Field(
        default=None,
        description="Command line that starts the flow run; default: Headwater's runner "
        "for the run's deployment entrypoint.",
    )
    stream_output: bool = Field(
        default=True,
        description="Copy the process's stdout and stderr to the worker's output.",
    )
    labels: dict[str, str] = Field(
        default={}, description="Labels of the job, for people and tools that read them."
    )


#: The process type's job configuration: every variable, as it is.
PROCESS_JOB_CONFIGURATION: dict[str, Any] = {
    "command": "{{ command }}",
    "env": "{{ env }}",
    "working_dir": "{{ working_dir }}",
    "stream_output": "{{ stream_output }}",
    "labels": "{{ labels }}",
}


# -- Registry ------------------------------------------------------------------------------


def _entry_points() -> dict[str, EntryPoint]:
    from importlib.metadata import entry_points

    return {point.name: point for point in entry_points(group=ENTRY_POINT_GROUP)}


def infrastructure_types() -> list[str]:
    """The work pool types this installation knows: built in, then from plugins."""
    return sorted({*_BUILTIN, *_entry_points()})


def require_known_type(pool_type: str) -> None:
    """Check that a plugin is installed for work pools of type `pool_type` (without loading it).

    Raises:
        UnknownInfrastructureType: naming the known types.
    """
    if pool_type not in _BUILTIN and pool_type not in _entry_points():
        raise _unknown(pool_type)


def _unknown(pool_type: str) -> UnknownInfrastructureType:
    known = ", ".join(infrastructure_types())
    return UnknownInfrastructureType(
        f"Unknown work pool type {pool_type!r}; known types: {known}. Other types come from "
        f"plugins (entry point group {ENTRY_POINT_GROUP!r}) installed where the server and "
        "the workers run; or give the pool a base_job_template of its own."
    )


def get_infrastructure(pool_type: str) -> type[Infrastructure]:
    """The infrastructure class of work pools of type `pool_type` (imported now).

    Raises:
        UnknownInfrastructureType: no plugin provides the type, or it cannot be loaded.
    """
    try:
        if pool_type in _BUILTIN:
            module, _, name = _BUILTIN[pool_type].partition(":")
            found: Any = getattr(importlib.import_module(module), name)
        else:
            point = _entry_points().get(pool_type)
            if point is None:
                raise _unknown(pool_type)
            found = point.load()
    except UnknownInfrastructureType:
        raise
    except Exception as exc:
        raise UnknownInfrastructureType(
            f"The plugin of work pool type {pool_type!r} cannot be loaded: "
            f"{type(exc).__name__}: {exc}; reinstall the package that provides it."
        ) from exc
    if not (isinstance(found, type) and issubclass(found, Infrastructure)):
        raise UnknownInfrastructureType(
            f"The plugin of work pool type {pool_type!r} is {found!r}, not a subclass of "
            "headwater.worker.infrastructure.Infrastructure."
        )
    return found


def default_base_job_template(pool_type: str) -> dict[str, Any]:
    """The job template a new work pool of type `pool_type` gets when it is given none.

    The process type's comes from this module, without importing the worker.

    Raises:
        UnknownInfrastructureType: no plugin provides `type`.
    """
    if pool_type == "process":
        return job_template(ProcessVariables, PROCESS_JOB_CONFIGURATION)
    return get_infrastructure(pool_type).base_job_template()


# -- Templates -----------------------------------------------------------------------------


def job_template(variables: type[BaseModel], job_configuration: dict[str, Any]) -> dict[str, Any]:
    """A job template from a model of the variables and a job configuration."""
    return {
        "job_configuration": copy.deepcopy(job_configuration),
        "variables": variables.model_json_schema(),
    }


def _properties(template: dict[str, Any]) -> dict[str, Any]:
    properties = template.get("variables", {}).get("properties", {})
    return properties if isinstance(properties, dict) else {}


def _placeholders(node: Any, where: str) -> list[tuple[str, str]]:
    """(location, variable name) of every placeholder in a job configuration."""
    found: list[tuple[str, str]] = []
    if isinstance(node, str):
        found.extend((where, match[1]) for match in _PLACEHOLDER.finditer(node))
    elif isinstance(node, dict):
        for key, value in node.items():
            found.extend(_placeholders(value, f"{where}.{key}"))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_placeholders(value, f"{where}[{index}]"))
    return found


def validate_job_template(template: Any) -> None:
    """Check a job template's shape, placeholders and defaults.

    Raises:
        JobTemplateError: naming the first problem and how to fix it.
    """
    if not isinstance(template, dict):
        raise JobTemplateError(
            'A job template is a JSON object {"job_configuration": {...}, "variables": '
            f"{{...}}}}, not {_show(template)}; see `headwater work-pool "
            "get-default-base-job-template --type process` for an example."
        )
    unknown = sorted(set(template) - {"job_configuration", "variables"})
    if unknown:
        raise JobTemplateError(
            f"A job template has only the keys 'job_configuration' and 'variables', not "
            f"{', '.join(map(repr, unknown))}."
        )
    configuration = template.get("job_configuration", {})
    variables = template.get("variables", {})
    if not isinstance(configuration, dict):
        raise JobTemplateError(
            f"job_configuration must be a JSON object, not {_show(configuration)}."
        )
    if not isinstance(variables, dict) or variables.get("type", "object") != "object":
        raise JobTemplateError(
            'variables must be the JSON schema of an object ({"type": "object", '
            f'"properties": {{...}}}}), not {_show(variables)}.'
        )
    properties = variables.get("properties", {})
    if not isinstance(properties, dict) or not all(
        isinstance(schema, dict | bool) for schema in properties.values()
    ):
        raise JobTemplateError(
            "variables.properties must map each variable's name to its JSON schema."
        )
    for where, name in _placeholders(configuration, "job_configuration"):
        if name not in properties:
            known = ", ".join(sorted(properties)) or "none"
            raise JobTemplateError(
                f"{where} uses {{{{ {name} }}}}, but {name!r} is not a variable of the "
                f"template (variables.properties has: {known}); add it or fix the name."
            )
    for name, schema in properties.items():
        _resolve(schema, variables)  # its references must lead somewhere
        if isinstance(schema, dict) and "default" in schema:
            problem = _problem(schema["default"], schema, name, variables)
            if problem:
                raise JobTemplateError(f"The default of variable {problem}.")


def check_job_variables(template: dict[str, Any], job_variables: dict[str, Any]) -> None:
    """Check variables a deployment or run sets: known names, values of the right type.

    Required variables may still be missing (a run can set them later).

    Raises:
        JobTemplateError: naming the variable and what it must be.
    """
    variables = template.get("variables", {})
    for name, value in job_variables.items():
        _check_variable(name, value, variables)


def _check_variable(name: str, value: Any, variables: dict[str, Any]) -> None:
    properties = variables.get("properties", {})
    if name in properties:
        problem = _problem(value, properties[name], name, variables)
    else:
        extra = variables.get("additionalProperties", True)
        if extra is False:
            known = ", ".join(sorted(properties)) or "none"
            raise JobTemplateError(
                f"Unknown job variable {name!r}; the work pool's job template has: {known}."
            )
        problem = _problem(value, extra, name, variables)
    if problem:
        raise JobTemplateError(f"Job variable {problem}.")


def render_job_configuration(
    template: dict[str, Any],
    *,
    deployment_job_variables: dict[str, Any] | None = None,
    run_job_variables: dict[str, Any] | None = None,
    pool_defaults: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The template's job configuration for one run, its placeholders filled in.

    Each variable's value is the run's, else the deployment's, else
    `pool_defaults`', else the schema's default (else None). A string that is
    exactly one placeholder ("{{ env }}") takes the value as it is (an object
    stays an object); placeholders inside a longer string are replaced by the
    value as text (strings as they are, None as "", anything else as JSON).

    Example:
        >>> template = default_base_job_template("process")
        >>> render_job_configuration(template, run_job_variables={"env": {"A": "1"}})["env"]
        {'A': '1'}

    Raises:
        JobTemplateError: a variable is unknown, missing while required, or of the
            wrong type (the message names it), or the template is malformed.
    """
    validate_job_template(template)
    variables = template.get("variables", {})
    values: dict[str, Any] = {
        name: copy.deepcopy(schema["default"])
        for name, schema in variables.get("properties", {}).items()
        if isinstance(schema, dict) and "default" in schema
    }
    for layer in (pool_defaults, deployment_job_variables, run_job_variables):
        values.update(copy.deepcopy(layer or {}))
    for name, value in values.items():
        _check_variable(name, value, variables)
    missing = [name for name in variables.get("required", []) if name not in values]
    if missing:
        raise JobTemplateError(
            f"Job variable {missing[0]!r} is required by the work pool's job template and has "
            "no default; set it in the deployment's or the run's job_variables."
        )
    rendered: dict[str, Any] = _substitute(template.get("job_configuration", {}), values)
    return rendered


def _substitute(node: Any, values: dict[str, Any]) -> Any:
    if isinstance(node, str):
        whole = _PLACEHOLDER.fullmatch(node)
        if whole:
            return copy.deepcopy(values.get(whole[1]))
        return _PLACEHOLDER.sub(lambda match: _as_text(values.get(match[1])), node)
    if isinstance(node, dict):
        return {key: _substitute(value, values) for key, value in node.items()}
    if isinstance(node, list):
        return [_substitute(value, values) for value in node]
    return node


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), default=str)


# -- A small JSON-schema checker --------------------------------------------------------

_JSON_TYPES = ("null", "boolean", "integer", "number", "string", "array", "object")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _is(value: Any, json_type: str) -> bool:
    actual = _json_type(value)
    if json_type == "number":
        return actual in ("integer", "number")
    if json_type == "integer":
        return actual == "integer" or (actual == "number" and float(value).is_integer())
    return actual == json_type


def _show(value: Any) -> str:
    text = json.dumps(value, default=repr) if _json_type(value) in _JSON_TYPES else repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({_json_type(value)})"


def _described(schema: Any, root: dict[str, Any]) -> str:
    """What a schema accepts, in a few words ("a string or null")."""
    schema = _resolve(schema, root)
    if not isinstance(schema, dict):
        return "anything" if schema else "nothing"
    if "const" in schema:
        return json.dumps(schema["const"])
    if "enum" in schema:
        return "one of " + ", ".join(json.dumps(item) for item in schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(_described(branch, root) for branch in schema[key])
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind else []
    if not kinds:
        return "a value"
    words = {
        "null": "null",
        "boolean": "true or false",
        "integer": "an integer",
        "number": "a number",
        "string": "a string",
        "array": "an array",
        "object": "an object",
    }
    return " or ".join(words.get(str(item), str(item)) for item in kinds)


def _resolve(schema: Any, root: dict[str, Any]) -> Any:
    seen = 0
    while isinstance(schema, dict) and "$ref" in schema:
        reference = str(schema["$ref"])
        if not reference.startswith("#/") or seen > 32:
            raise JobTemplateError(
                f"The job template's schema refers to {reference!r}; only references inside "
                "the variables schema ('#/$defs/...') are supported."
            )
        node: Any = root
        for part in reference[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                raise JobTemplateError(
                    f"The job template's schema refers to {reference!r}, which it does not define."
                )
            node = node[part]
        schema, seen = node, seen + 1
    return schema


def _problem(value: Any, schema: Any, where: str, root: dict[str, Any]) -> str | None:
    """The first way `value` breaks `schema` ("'x': expected ..., got ..."), or None."""
    schema = _resolve(schema, root)
    if schema is True or schema == {}:
        return None
    if schema is False or not isinstance(schema, dict):
        return f"{where!r}: no value is allowed here, got {_show(value)}"
    for key in ("anyOf", "oneOf"):
        if key in schema and all(_problem(value, branch, where, root) for branch in schema[key]):
            return f"{where!r}: expected {_described(schema, root)}, got {_show(value)}"
    for branch in schema.get("allOf", []):
        problem = _problem(value, branch, where, root)
        if problem:
            return problem
    if "const" in schema and not _equal(value, schema["const"]):
        return f"{where!r}: expected {_described(schema, root)}, got {_show(value)}"
    if "enum" in schema and not any(_equal(value, item) for item in schema["enum"]):
        return f"{where!r}: expected {_described(schema, root)}, got {_show(value)}"
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind else []
    if kinds and not any(_is(value, str(item)) for item in kinds):
        return f"{where!r}: expected {_described(schema, root)}, got {_show(value)}"
    return _bounds(value, schema, where) or _members(value, schema, where, root)


def _equal(value: Any, other: Any) -> bool:
    return _json_type(value) == _json_type(other) and bool(value == other)


def _bounds(value: Any, schema: dict[str, Any], where: str) -> str | None:
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            return f"{where!r}: expected at least {schema['minLength']} characters"
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            return f"{where!r}: expected at most {schema['maxLength']} characters"
        if "pattern" in schema and not re.search(str(schema["pattern"]), value):
            return f"{where!r}: {_show(value)} does not match the pattern {schema['pattern']!r}"
    if _json_type(value) in ("integer", "number"):
        checks = (
            ("minimum", operator.ge, "at least"),
            ("maximum", operator.le, "at most"),
            ("exclusiveMinimum", operator.gt, "more than"),
            ("exclusiveMaximum", operator.lt, "less than"),
        )
        for key, holds, words in checks:
            if key in schema and not holds(value, schema[key]):
                return f"{where!r}: expected {words} {schema[key]}, got {value}"
    if isinstance(value, list | tuple):
        if "minItems" in schema and len(value) < schema["minItems"]:
            return f"{where!r}: expected at least {schema['minItems']} items"
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            return f"{where!r}: expected at most {schema['maxItems']} items"
    return None


def _members(value: Any, schema: dict[str, Any], where: str, root: dict[str, Any]) -> str | None:
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                return f"{where + '.' + name!r}: is required"
        extra = schema.get("additionalProperties", True)
        for name, member in value.items():
            if name in properties:
                problem = _problem(member, properties[name], f"{where}.{name}", root)
            elif extra is False:
                known = ", ".join(sorted(properties)) or "none"
                return f"{where!r}: unknown key {name!r} (known: {known})"
            else:
                problem = _problem(member, extra, f"{where}.{name}", root)
            if problem:
                return problem
    if isinstance(value, list | tuple) and "items" in schema:
        for index, member in enumerate(value):
            problem = _problem(member, schema["items"], f"{where}[{index}]", root)
            if problem:
                return problem
    return None
