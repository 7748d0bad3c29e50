"""`headwater.yaml`: several deployments in one file, for `headwater deploy`.

    deployments:
      - name: nightly
        entrypoint: flows/etl.py:nightly     # relative to the file's directory
        work_pool:
          name: etl
          work_queue_name: default
          job_variables: {env: {LOG_LEVEL: debug}}
        schedules:
          - cron: "0 2 * * *"
            timezone: Europe/Paris
          - interval: 3600
        parameters: {day: today}
        tags: [etl]
        concurrency_limit: 2                 # or {limit: 2, collision_strategy: cancel_new}

The keys follow the deployment entries of Prefect's prefect.yaml; a key this
reader does not know is an error naming it (a typo must not pass silently).
Everything is checked, and every flow loaded, before anything is registered.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from headwater.exceptions import ConfigurationError

#: Keys of one deployment entry, and what each holds (for error messages).
DEPLOYMENT_KEYS = {
    "name": "the deployment's name",
    "entrypoint": "'path/to/file.py:function', relative to the file's directory",
    "description": "text",
    "version": "text",
    "tags": "a list of tags",
    "parameters": "a mapping of default parameters",
    "enforce_parameter_schema": "true or false",
    "work_pool": "a mapping with name, work_queue_name, job_variables",
    "schedules": "a list of schedules",
    "concurrency_limit": "a number, or a mapping with limit and collision_strategy",
    "paused": "true or false",
}
WORK_POOL_KEYS = ("name", "work_queue_name", "job_variables")
CONCURRENCY_KEYS = ("limit", "collision_strategy")
#: Keys every schedule may have, and those of each kind (the kind is the key present).
SCHEDULE_COMMON = ("timezone", "active", "catchup", "parameters")
SCHEDULE_KINDS = {
    "cron": ("cron", "day_or"),
    "interval": ("interval", "anchor_date"),
    "rrule": ("rrule",),
}


@dataclasses.dataclass(frozen=True)
class FileDeployment:
    """One entry of the file: its name, entrypoint, and `flow.to_deployment` options."""

    name: str
    entrypoint: str
    options: dict[str, Any]


def read_deployment_file(path: Path) -> list[FileDeployment]:
    """The deployments `path` describes, checked.

    Raises:
        ConfigurationError: the file is not valid YAML, or an entry has an unknown key or
            a value of the wrong kind; the message names the file, entry and key.
    """
    import yaml

    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigurationError(f"{path} is not valid YAML{where}: {problem}.") from None
    if not isinstance(document, Mapping) or "deployments" not in document:
        raise ConfigurationError(
            f"{path} must be a mapping with a 'deployments' list (see docs/deployments.md)."
        )
    _no_unknown(document, ("deployments",), f"{path}")
    entries = document["deployments"]
    if not isinstance(entries, list) or not entries:
        raise ConfigurationError(f"{path}: 'deployments' must be a list of deployments.")
    found = [_entry(item, f"{path}, deployment {index + 1}") for index, item in enumerate(entries)]
    seen: set[tuple[str, str]] = set()
    for item in found:
        key = (item.entrypoint, item.name)
        if key in seen:
            raise ConfigurationError(
                f"{path} describes deployment {item.name!r} of {item.entrypoint!r} twice."
            )
        seen.add(key)
    return found


def _entry(item: Any, where: str) -> FileDeployment:
    if not isinstance(item, Mapping):
        raise ConfigurationError(f"{where}: expected a mapping of keys, got {_show(item)}.")
    name = item.get("name")
    if isinstance(name, str) and name:
        where = f"{where.rsplit(', deployment', 1)[0]}, deployment {name!r}"
    _no_unknown(item, tuple(DEPLOYMENT_KEYS), where)
    for required in ("name", "entrypoint"):
        if not isinstance(item.get(required), str) or not item[required].strip():
            raise ConfigurationError(
                f"{where}: '{required}' is required: {DEPLOYMENT_KEYS[required]}."
            )
    options: dict[str, Any] = {}
    for key in ("description", "version"):
        if item.get(key) is not None:
            options[key] = _text(item[key], key, where)
    if "tags" in item:
        tags = item["tags"]
        if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
            raise ConfigurationError(f"{where}: 'tags' must be a list of text, got {_show(tags)}.")
        options["tags"] = tags
    if "parameters" in item:
        options["parameters"] = _mapping(item["parameters"], "parameters", where)
    for key in ("enforce_parameter_schema", "paused"):
        if key in item:
            options[key] = _boolean(item[key], key, where)
    if item.get("work_pool") is None:
        raise ConfigurationError(
            f"{where}: 'work_pool' is required (a mapping with its name): `headwater deploy` "
            "registers deployments for a pool's workers; run a flow's own process with "
            "flow.serve() instead."
        )
    options.update(_work_pool(item["work_pool"], where))
    if "schedules" in item:
        options["schedules"] = _schedules(item["schedules"], where)
    if item.get("concurrency_limit") is not None:
        options["concurrency_limit"] = _concurrency(item["concurrency_limit"], where)
    return FileDeployment(name=item["name"], entrypoint=item["entrypoint"], options=options)


def _work_pool(value: Any, where: str) -> dict[str, Any]:
    pool = _mapping(value, "work_pool", where)
    _no_unknown(pool, WORK_POOL_KEYS, f"{where}, work_pool")
    if not isinstance(pool.get("name"), str) or not pool["name"]:
        raise ConfigurationError(f"{where}: work_pool needs a 'name'.")
    options: dict[str, Any] = {"work_pool_name": pool["name"]}
    if pool.get("work_queue_name") is not None:
        options["work_queue_name"] = _text(pool["work_queue_name"], "work_queue_name", where)
    if pool.get("job_variables") is not None:
        options["job_variables"] = _mapping(pool["job_variables"], "job_variables", where)
    return options


def _schedules(value: Any, where: str) -> list[Any]:
    from headwater.schedules import Cron, Interval, RRule

    if not isinstance(value, list):
        raise ConfigurationError(f"{where}: 'schedules' must be a list, got {_show(value)}.")
    made: list[Any] = []
    for index, item in enumerate(value):
        at = f"{where}, schedule {index + 1}"
        if not isinstance(item, Mapping):
            raise ConfigurationError(f"{at}: expected a mapping such as {{cron: '0 2 * * *'}}.")
        kinds = [kind for kind in SCHEDULE_KINDS if kind in item]
        if len(kinds) != 1:
            raise ConfigurationError(
                f"{at}: give exactly one of cron, interval or rrule (found "
                f"{', '.join(kinds) or 'none'})."
            )
        kind = kinds[0]
        _no_unknown(item, SCHEDULE_KINDS[kind] + SCHEDULE_COMMON, at)
        options = {key: _plain(item[key]) for key in item}
        if "catchup" in options and isinstance(options["catchup"], str):
            options["catchup"] = options["catchup"].upper()
        try:
            made.append({"cron": Cron, "interval": Interval, "rrule": RRule}[kind](**options))
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(f"{at}: {exc}.") from None
    return made


def _concurrency(value: Any, where: str) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    limit = _mapping(value, "concurrency_limit", where)
    _no_unknown(limit, CONCURRENCY_KEYS, f"{where}, concurrency_limit")
    strategy = str(limit.get("collision_strategy", "enqueue")).upper().replace("-", "_")
    if strategy not in ("ENQUEUE", "CANCEL_NEW"):
        raise ConfigurationError(
            f"{where}: collision_strategy {limit.get('collision_strategy')!r} is not "
            "'enqueue' or 'cancel_new'."
        )
    count = limit.get("limit")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ConfigurationError(
            f"{where}: concurrency_limit needs 'limit', a whole number of 1 or more."
        )
    return {"limit": count, "collision_strategy": strategy}


def _no_unknown(mapping: Mapping[Any, Any], known: tuple[str, ...], where: str) -> None:
    for key in mapping:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigurationError(
                f"{where}: unknown key {key!r}{hint}; known keys: {', '.join(known)}."
            )


def _mapping(value: Any, key: str, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{where}: '{key}' must be a mapping, got {_show(value)}.")
    return {str(name): _plain(item) for name, item in value.items()}


def _text(value: Any, key: str, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigurationError(
            f"{where}: '{key}' must be text, got {_show(value)}; quote it: {key}: \"{value}\"."
        )
    return value


def _boolean(value: Any, key: str, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigurationError(f"{where}: '{key}' must be true or false, got {_show(value)}.")
    return value


def _plain(value: Any) -> Any:
    """YAML's dates and times (`day: 2026-11-20` loads as a date) as ISO text."""
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
