"""`headwater config ...`: show the settings in effect and where each one came from."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

from headwater.cli.session import handle_errors

if TYPE_CHECKING:
    from headwater.settings import Settings


@handle_errors
def view(
    show_sources: Annotated[
        bool,
        typer.Option(
            "--show-sources",
            help="Also show where each value came from: an environment variable, the "
            "active profile in $HEADWATER_HOME/profiles.toml, or the default.",
        ),
    ] = False,
) -> None:
    """Show every setting and its value (secrets in URLs masked)."""
    from rich.table import Table
    from rich.text import Text

    from headwater.cli import output
    from headwater.settings import ENV_PREFIX, get_settings

    settings = get_settings()
    sources = setting_sources(settings) if show_sources else {}
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("Setting", no_wrap=True)
    table.add_column("Value")
    if show_sources:
        table.add_column("Source")
    for name, value in settings.as_dict().items():
        shown = Text("(not set)", style="dim") if value is None else Text(_display(name, value))
        row = [Text(f"{ENV_PREFIX}{name.upper()}"), shown]
        if show_sources:
            row.append(Text(sources[name], style="dim" if sources[name] == "default" else ""))
        table.add_row(*row)
    out = output.console()
    out.print(table)
    out.print(
        Text(f"\nStore: {output.mask_url(settings.effective_database_url)}", style="dim"),
        soft_wrap=True,
    )


def setting_sources(settings: Settings) -> dict[str, str]:
    """Where each setting's value came from, by setting name.

    Mirrors the precedence of `headwater.settings.load_settings`: environment
    variable, then the active profile, then the default.
    """
    import tomllib

    from headwater.settings import ENV_PREFIX

    document: dict[str, object] = {}
    if settings.profiles_path.exists():
        # load_settings already parsed this file, so it is valid TOML.
        document = tomllib.loads(settings.profiles_path.read_text())
    profiles = document.get("profiles")
    profile = profiles.get(settings.profile, {}) if isinstance(profiles, dict) else {}
    sources: dict[str, str] = {}
    for name in settings.as_dict():
        variable = f"{ENV_PREFIX}{name.upper()}"
        if variable in os.environ:
            sources[name] = f"env {variable}"
        elif name in profile:
            sources[name] = f"profile {settings.profile!r} ({settings.profiles_path})"
        elif name == "profile" and "active" in document:
            sources[name] = f"profiles file ({settings.profiles_path})"
        else:
            sources[name] = "default"
    return sources


def _display(name: str, value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if name.endswith("_key"):
        return "***"  # set, but never shown
    if name.endswith("_url"):
        from headwater.cli.output import mask_url

        return mask_url(str(value))
    return str(value)
