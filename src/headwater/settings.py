"""Settings: one model, read once, from `HEADWATER_*` variables and a profile file.

Precedence: environment variable, then the active profile in
`$HEADWATER_HOME/profiles.toml`, then the default. Example profile file:

    active = "dev"
    [profiles.dev]
    logging_level = "DEBUG"
    database_url = "postgresql+psycopg://postgres@127.0.0.1:5432/headwater"

Why a dataclass and not pydantic-settings: importing pydantic-settings takes
about 0.2 s on our 2-core machines, which alone would blow the 0.25 s budget
for a whole hello-world process. The model is small and typed; values are
coerced and checked here with errors that name the variable and the fix.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from pathlib import Path
from typing import Any

from headwater.exceptions import ConfigurationError

ENV_PREFIX = "HEADWATER_"


@dataclasses.dataclass(frozen=True)
class Settings:
    """Every setting Headwater reads. Field `x` comes from `HEADWATER_X`."""

    home: Path = Path("~/.headwater")
    profile: str = "default"
    database_url: str | None = None
    api_url: str | None = None
    logging_level: str = "INFO"
    log_to_console: bool = True
    recorder_flush_interval: float = 0.01
    recorder_batch_size: int = 5000
    task_runner_max_workers: int | None = None
    #: the key clients must send as `Authorization: Bearer <key>`; required to serve
    #: a non-loopback address
    api_key: str | None = None
    server_host: str = "127.0.0.1"
    server_port: int = 4200
    #: run the background services (crash detection...) in the server process
    server_services: bool = True
    server_services_interval: float = 10.0
    server_parameters_max_bytes: int = 512 * 1024
    server_request_max_bytes: int = 4 * 1024 * 1024
    server_records_max_bytes: int = 32 * 1024 * 1024
    #: seconds between polls of a live stream when no notification arrives
    server_stream_poll_interval: float = 1.0
    #: the Fernet key that encrypts secrets at rest (else the key file below)
    secret_key: str | None = None
    #: the key file used when `secret_key` is not set (default: `home`/secret.key)
    secret_key_file: Path | None = None
    #: record a lifecycle event for every task-run state change (off: flow runs only;
    #: ~35% more run throughput on a busy server)
    task_run_events: bool = True
    #: days events are kept; the retention service deletes older ones (0: keep forever)
    server_events_retention_days: float = 7.0
    #: seconds the automations service waits for new events when nothing wakes it
    server_automations_poll_interval: float = 0.2
    #: hosts or networks (comma separated: `localhost,127.0.0.1,10.0.0.0/8`) that
    #: call-webhook actions may reach although they are loopback, private or link-local
    server_automations_allowed_hosts: str = ""
    #: the UI's address for links in notifications (default: http://<server_host>:<server_port>)
    server_ui_url: str | None = None
    #: persist every task's and flow's result unless it says persist_result=False
    results_persist_by_default: bool = False
    #: the serializer of persisted results when a task or flow names none
    results_default_serializer: str = "pickle"
    #: where persisted results go by default; unset: `<home>/results`
    local_storage_path: Path | None = None

    @property
    def effective_database_url(self) -> str:
        """`database_url`, or the embedded SQLite file under `home`."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'headwater.db'}"

    @property
    def profiles_path(self) -> Path:
        return self.home / "profiles.toml"

    def __repr__(self) -> str:
        shown = self.as_dict()
        for name in ("api_key", "secret_key"):
            if shown[name]:
                shown[name] = "***"
        return "Settings(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"

    def as_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["home"] = str(self.home)
        if self.local_storage_path is not None:
            values["local_storage_path"] = str(self.local_storage_path)
        return values


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
_LEVELS = {"CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"}


def _coerce(name: str, raw: Any, source: str) -> Any:
    field_type = str(_FIELDS[name].type)
    try:
        if raw is None or (raw == "" and "None" in field_type):
            if "None" in field_type:
                return None
            raise ValueError("a value is required")
        if field_type.startswith("Path"):
            return Path(str(raw)).expanduser()
        if field_type.startswith("bool"):
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off"}:
                return False
            raise ValueError("expected true or false")
        if field_type.startswith("float"):
            value: Any = float(raw)
            if value <= 0:
                raise ValueError("must be greater than 0")
            return value
        if field_type.startswith("int"):
            value = int(raw)
            if value <= 0:
                raise ValueError("must be greater than 0")
            return value
        text = str(raw)
        if name == "logging_level":
            text = text.upper()
            if text not in _LEVELS:
                raise ValueError(f"expected one of {', '.join(sorted(_LEVELS))}")
        return text
    except ValueError as exc:
        raise ConfigurationError(
            f"Invalid setting {source}={raw!r}: {exc}. Fix or unset it "
            f"(see `headwater config view`)."
        ) from None


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Build settings from the environment and the active profile."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    home = Path(env.get(f"{ENV_PREFIX}HOME") or "~/.headwater").expanduser()
    profile_values, profile = _read_profile(home, env.get(f"{ENV_PREFIX}PROFILE"))
    for name, raw in profile_values.items():
        if name not in _FIELDS or name in {"home", "profile"}:
            raise ConfigurationError(
                f"Unknown setting {name!r} in profile {profile!r} of {home / 'profiles.toml'}; "
                f"known settings: {', '.join(sorted(set(_FIELDS) - {'home', 'profile'}))}."
            )
        values[name] = _coerce(name, raw, f"{name} (profile {profile})")
    for name in _FIELDS:
        key = f"{ENV_PREFIX}{name.upper()}"
        if key in env:
            values[name] = _coerce(name, env[key], key)
    values["home"] = home
    values["profile"] = profile
    return Settings(**values)


def _read_profile(home: Path, requested: str | None) -> tuple[dict[str, Any], str]:
    path = home / "profiles.toml"
    if not path.exists():
        if requested and requested != "default":
            raise ConfigurationError(
                f"Profile {requested!r} was requested (HEADWATER_PROFILE) but {path} does not "
                f"exist; create it with a [profiles.{requested}] table or unset HEADWATER_PROFILE."
            )
        return {}, requested or "default"
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"Cannot read profiles file {path}: {exc}") from None
    name = requested or document.get("active") or "default"
    profiles = document.get("profiles", {})
    if name not in profiles:
        if name == "default":
            return {}, name
        raise ConfigurationError(
            f"Profile {name!r} is not defined in {path}; defined: {sorted(profiles) or 'none'}."
        )
    return dict(profiles[name]), name


_settings: Settings | None = None


def get_settings() -> Settings:
    """The process's settings, read on first use."""
    global _settings
    if _settings is None:
        _settings = load_settings()
    return _settings


def reset_settings() -> None:
    """Forget the cached settings (tests, or after changing the environment)."""
    global _settings
    _settings = None
