"""Automations in a YAML file, for `headwater automation apply FILE`.

    automations:
      - name: etl-failures
        description: Tell the team when a run of etl fails
        trigger:
          type: event
          expect: ["headwater.flow-run.Failed"]
          match_related: {headwater.resource.role: flow, headwater.resource.name: etl}
        actions:
          - type: send-notification
            url: "slack://TOKEN_A/TOKEN_B/TOKEN_C"
        tags: [etl]

Each entry has the fields of `AutomationCreate` (name, description, enabled,
trigger, actions, actions_on_trigger, actions_on_resolve, tags). A file may also
hold one automation at its top level, or a list of them. Durations (`within`,
a metric's `range` and `firing_for`) are seconds or text such as "90s", "10m",
"1h30m", "2d".

Every entry is checked before anything is stored: one bad entry and nothing is
applied. Then each is upserted by name.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from headwater.exceptions import ConfigurationError, ObjectNotFound

if TYPE_CHECKING:
    from headwater.client.api import ApiClient
    from headwater.schemas.automations import AutomationCreate

Outcome = Literal["created", "updated", "unchanged"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0, "w": 604_800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_DURATION = re.compile(r"\s*(?:\d+(?:\.\d+)?\s*(?:ms|s|m|h|d|w)\s*)+")
#: Trigger fields that hold durations, and those of a metric trigger's `metric`.
_TRIGGER_DURATIONS = ("within",)
_METRIC_DURATIONS = ("range", "firing_for")


def parse_duration(value: Any) -> Any:
    """Seconds for a duration written as text ("90s", "10m", "1h30m", "2d", "1.5h");
    any other value as it is (numbers, and text the schema will refuse with its message).

    Example:
        >>> parse_duration("1h30m")
        5400.0
    """
    if not isinstance(value, str) or not _DURATION.fullmatch(value.lower()):
        return value
    return sum(float(number) * _UNITS[unit] for number, unit in _PART.findall(value.lower()))


def with_durations(trigger: Any) -> Any:
    """`trigger` (as read from YAML) with its duration texts, nested ones too, as seconds."""
    if not isinstance(trigger, dict):
        return trigger
    converted = dict(trigger)
    for key in _TRIGGER_DURATIONS:
        if key in converted:
            converted[key] = parse_duration(converted[key])
    metric = converted.get("metric")
    if isinstance(metric, dict):
        converted["metric"] = {
            key: parse_duration(value) if key in _METRIC_DURATIONS else value
            for key, value in metric.items()
        }
    if isinstance(converted.get("triggers"), list):
        converted["triggers"] = [with_durations(item) for item in converted["triggers"]]
    return converted


@dataclasses.dataclass(frozen=True)
class FileAutomation:
    """One checked entry of the file."""

    index: int
    automation: AutomationCreate

    @property
    def name(self) -> str:
        return self.automation.name


def read_automation_file(path: Path) -> list[FileAutomation]:
    """The automations `path` holds, every one checked.

    Raises:
        ConfigurationError: the file cannot be read or is not YAML, or an entry is
            invalid; the message names the entry (index and name) and the field.
    """
    import yaml

    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise ConfigurationError(f"{path} is not valid YAML{line}: {exc}.") from None
    return parse_automations(document, source=str(path))


def parse_automations(document: Any, *, source: str = "the file") -> list[FileAutomation]:
    """Checked automations from a loaded YAML document (see `read_automation_file`)."""
    from pydantic import ValidationError

    from headwater.schemas.automations import AutomationCreate

    entries = _entries(document, source)
    problems: list[str] = []
    checked: list[FileAutomation] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        label = _label(index, entry)
        if not isinstance(entry, dict):
            problems.append(f"{label}: an automation is a mapping with name, trigger and actions")
            continue
        data = dict(entry)
        if "trigger" in data:
            data["trigger"] = with_durations(data["trigger"])
        try:
            automation = AutomationCreate.model_validate(data)
        except ValidationError as exc:
            problems.extend(f"{label}: {_error_text(error)}" for error in exc.errors())
            continue
        if automation.name in seen:
            problems.append(
                f"{label}: the name {automation.name!r} is also used by "
                f"automations[{seen[automation.name]}]; names must be unique"
            )
            continue
        seen[automation.name] = index
        checked.append(FileAutomation(index, automation))
    if problems:
        raise ConfigurationError(
            f"{source}: nothing applied; fix {'this' if len(problems) == 1 else 'these'}: "
            + "; ".join(problems)
            + "."
        )
    return checked


def _entries(document: Any, source: str) -> list[Any]:
    if isinstance(document, dict) and "automations" in document:
        extra = sorted(set(document) - {"automations"})
        if extra:
            raise ConfigurationError(
                f"{source}: unknown top-level key(s) {extra}; the file holds `automations:` "
                "(a list), or one automation."
            )
        entries = document["automations"]
        if not isinstance(entries, list):
            raise ConfigurationError(f"{source}: `automations` must be a list of automations.")
        return entries
    if isinstance(document, dict):
        return [document]
    if isinstance(document, list):
        return document
    raise ConfigurationError(
        f"{source}: expected `automations:` with a list of automations (each with name, "
        "trigger and actions), or one automation."
    )


def _label(index: int, entry: Any) -> str:
    name = entry.get("name") if isinstance(entry, dict) else None
    return f"automations[{index}]" + (f" ({name!r})" if isinstance(name, str) else "")


def _tags() -> set[str]:
    from typing import get_args

    from headwater.schemas.automations import ActionTypes, TriggerTypes

    tags = set()
    for union in (TriggerTypes, ActionTypes):
        for model in get_args(get_args(union)[0]):
            tags.add(model.model_fields["type"].default)
    return tags


def _error_text(error: Any) -> str:
    """'trigger.within: Input should be ...' from a pydantic error; the union tags pydantic
    adds to the location (trigger.event.within) are left out."""
    tags = _tags()
    parts: list[str] = []
    location = list(error.get("loc", ()))
    for position, part in enumerate(location):
        previous = location[position - 1] if position else None
        if (
            isinstance(part, str)
            and part in tags
            and (previous == "trigger" or type(previous) is int)
        ):
            continue
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(("." if parts else "") + str(part))
    message = str(error.get("msg", "invalid"))
    message = message.removeprefix("Value error, ")
    where = "".join(parts)
    if error.get("type") == "extra_forbidden":
        message = "unknown field (check its spelling)"
    elif location and location[-1] in (*_TRIGGER_DURATIONS, *_METRIC_DURATIONS):
        message = message.rstrip(".") + ' (give seconds, or text like "90s", "10m", "1h30m")'
    return f"{where}: {message}" if where else message


def _path(name: str) -> str:
    return f"/automations/name/{quote(name, safe='')}"


def apply_automation(
    client: ApiClient, automation: AutomationCreate, *, dry_run: bool = False
) -> Outcome:
    """Store `automation` under its name: created, updated, or unchanged (not written).

    With `dry_run`, only reads: the outcome says what applying would do.
    """
    from headwater.schemas.automations import AutomationCore, AutomationCreate

    try:
        stored = client.request("GET", _path(automation.name))
    except ObjectNotFound:
        stored = None
    outcome: Outcome = "created"
    if stored is not None:
        current = AutomationCreate.model_validate(
            {key: value for key, value in stored.items() if key in AutomationCore.model_fields}
        )
        if current == automation:
            return "unchanged"
        outcome = "updated"
    if not dry_run:
        client.request("PUT", _path(automation.name), json=automation.model_dump(mode="json"))
    return outcome
