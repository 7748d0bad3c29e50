"""`headwater webhook ...`: create, list, inspect, rotate, enable, disable and delete
webhooks (addresses that turn HTTP requests into events).

Commands speak to the API through `get_client()`: the server at HEADWATER_API_URL,
or the embedded store's API in this process. With a server URL the commands print
each webhook's full URL; without one, its path (`/hooks/<slug>`) on your server.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from headwater.cli.session import handle_errors
from headwater.client.api import get_client

HELP = (
    "Manage webhooks: URLs (/hooks/<slug>) whose requests become events through a template. "
    "See docs/webhooks.md."
)

NameArgument = Annotated[
    str,
    typer.Argument(
        metavar="NAME",
        help="The webhook's name: lowercase letters, digits, underscores and dashes.",
        show_default=False,
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON (as the API returns it) instead.")
]


def _print(text: str) -> None:
    from headwater.cli.output import console

    console().print(text, highlight=False, markup=False, soft_wrap=True)


def full_url(path: str) -> str:
    """`path` (/hooks/<slug>) on the server of HEADWATER_API_URL, if one is set."""
    from headwater.settings import get_settings

    api_url = get_settings().api_url
    if not api_url:
        return path
    base = api_url.rstrip("/")
    if base.endswith("/api"):
        base = base[: -len("/api")]
    return base + path


def _where(item: dict[str, Any]) -> str:
    url = full_url(item["url"])
    if url == item["url"]:
        return f"{url} (on your server's address)"
    return url


def _find(name: str) -> dict[str, Any]:
    from urllib.parse import quote

    item: dict[str, Any] = get_client().request("GET", f"/webhooks/name/{quote(name, safe='')}")
    return item


def _read_template(template: str | None, template_file: str | None) -> str:
    from headwater.cli.parsing import BadOptionValue

    if (template is None) == (template_file is None):
        raise BadOptionValue(
            "Give the webhook's template with --template TEXT or --template-file PATH "
            "('-' for stdin), one of them."
        )
    if template is not None:
        return template
    assert template_file is not None
    if template_file == "-":
        return sys.stdin.read()
    path = Path(template_file).expanduser()
    try:
        return path.read_text()
    except OSError as exc:
        raise BadOptionValue(f"--template-file: cannot read {path}: {exc.strerror}.") from None


@handle_errors
def create(
    name: NameArgument,
    template: Annotated[
        str | None,
        typer.Option(
            "--template", metavar="TEXT", help="The Jinja template that renders the event as JSON."
        ),
    ] = None,
    template_file: Annotated[
        str | None,
        typer.Option(
            "--template-file", metavar="PATH", help="Read the template from this file ('-': stdin)."
        ),
    ] = None,
    description: Annotated[
        str | None, typer.Option("--description", help="What the webhook is for.")
    ] = None,
    signing_secret: Annotated[
        str | None,
        typer.Option(
            "--signing-secret",
            metavar="SECRET",
            help="Require requests signed with this secret (it stays in your shell history; "
            "--generate-signing-secret does not).",
        ),
    ] = None,
    generate_signing_secret: Annotated[
        bool,
        typer.Option(
            "--generate-signing-secret",
            help="Require signed requests with a new random secret, printed once.",
        ),
    ] = False,
    disabled: Annotated[
        bool, typer.Option("--disabled", help="Create it disabled (its URL answers 404).")
    ] = False,
) -> None:
    """Create a webhook and print its URL (and its generated signing secret, once)."""
    from headwater.cli.parsing import BadOptionValue

    if signing_secret is not None and generate_signing_secret:
        raise BadOptionValue("Give --signing-secret or --generate-signing-secret, not both.")
    body: dict[str, Any] = {
        "name": name,
        "template": _read_template(template, template_file),
        "description": description,
        "enabled": not disabled,
        "generate_signing_secret": generate_signing_secret,
    }
    if signing_secret is not None:
        body["signing_secret"] = signing_secret
    item = get_client().request("POST", "/webhooks", json=body)
    state = "" if item["enabled"] else " (disabled)"
    _print(f"Created webhook {name!r}{state}: POST {_where(item)}")
    if item.get("signing_secret"):
        _print(f"Signing secret (shown this once; keep it in the sender): {item['signing_secret']}")


@handle_errors
def ls(
    contains: Annotated[
        str | None, typer.Option("--name", help="Only webhooks whose name contains this text.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most this many.")] = 200,
    as_json: JsonOption = False,
) -> None:
    """List webhooks by name, with their URLs."""
    params: dict[str, Any] = {"limit": min(limit, 1000)}
    if contains:
        params["name_contains"] = contains
    page = get_client().request("GET", "/webhooks", params=params)
    items = page["items"][:limit]
    if as_json:
        from headwater.cli.output import print_json

        print_json(items)
        return
    if not items:
        _print("No webhooks. Create one with `headwater webhook create NAME --template-file PATH`.")
        return
    from rich.table import Table
    from rich.text import Text

    from headwater.cli.output import console

    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("Name", overflow="fold", min_width=6)
    table.add_column("Enabled", no_wrap=True)
    table.add_column("Signed", no_wrap=True)
    table.add_column("URL", overflow="fold")
    for item in items:
        table.add_row(
            Text(item["name"]),
            "yes" if item["enabled"] else "no",
            "yes" if item["signed"] else "no",
            Text(full_url(item["url"])),
        )
    out = console()
    out.print(table)
    total = page["total"]
    out.print(f"\n{len(items)} of {total} webhook{'s' if total != 1 else ''}.", style="dim")


@handle_errors
def inspect(name: NameArgument) -> None:
    """Print a webhook as JSON (its `url` in full when HEADWATER_API_URL is set)."""
    from headwater.cli.output import print_json

    item = _find(name)
    item["url"] = full_url(item["url"])
    print_json(item)


@handle_errors
def rotate(name: NameArgument) -> None:
    """Give a webhook a new URL; the old one stops working at once."""
    found = _find(name)
    item = get_client().request("POST", f"/webhooks/{found['id']}/rotate")
    _print(f"Rotated webhook {name!r}; its URL is now: POST {_where(item)}")
    _print("The old URL answers 404 from now on: update the senders.")


def _set_enabled(name: str, enabled: bool) -> None:
    found = _find(name)
    get_client().request("PATCH", f"/webhooks/{found['id']}", json={"enabled": enabled})
    if enabled:
        _print(f"Enabled webhook {name!r}: POST {_where(found)}")
    else:
        _print(f"Disabled webhook {name!r}: its URL answers 404 until enabled.")


@handle_errors
def enable(name: NameArgument) -> None:
    """Enable a webhook: its URL accepts requests again."""
    _set_enabled(name, True)


@handle_errors
def disable(name: NameArgument) -> None:
    """Disable a webhook: its URL answers 404 (as an unknown one) until enabled."""
    _set_enabled(name, False)


@handle_errors
def delete(
    name: NameArgument,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a webhook; its URL answers 404 at once."""
    found = _find(name)
    if not yes:
        typer.confirm(f"Delete webhook {name!r}? Its URL will stop working.", abort=True)
    get_client().request("DELETE", f"/webhooks/{found['id']}")
    _print(f"Deleted webhook {name!r}.")


def register(app: typer.Typer) -> None:
    """Add the `webhook` command group to `app`."""
    group = typer.Typer(no_args_is_help=True, help=HELP)
    group.command("create")(create)
    group.command("ls")(ls)
    group.command("inspect")(inspect)
    group.command("rotate")(rotate)
    group.command("enable")(enable)
    group.command("disable")(disable)
    group.command("delete")(delete)
    app.add_typer(group, name="webhook")
