"""`headwater secret ...`: set, list and delete secrets; make and rotate the key.

`set`, `ls` and `delete` speak to the API (the server at HEADWATER_API_URL, or
the embedded store's API). A value is never taken from the command line, where
shell history and `ps` would keep it: it comes from a hidden prompt, stdin, or
a file. `rotate-key` works where the server runs: on its database, with its key.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from headwater.cli.session import handle_errors
from headwater.client.api import get_client

if TYPE_CHECKING:
    from headwater.server.crypto import SecretKey
    from headwater.settings import Settings

HELP = (
    "Manage secrets: values encrypted at rest (Secret.load(NAME).get() reads one in a flow). "
    "Values are never printed."
)

NameArgument = Annotated[
    str,
    typer.Argument(
        metavar="NAME",
        help="The secret's name: lowercase letters, digits, underscores and dashes.",
        show_default=False,
    ),
]


def _path(name: str) -> str:
    from urllib.parse import quote

    return f"/secrets/{quote(name, safe='')}"


def _read_value(value_file: str | None) -> str:
    """The value from `value_file` ("-": stdin), else a hidden prompt (or stdin if piped)."""
    if value_file == "-" or (value_file is None and not sys.stdin.isatty()):
        text = sys.stdin.read()
    elif value_file is not None:
        text = Path(value_file).expanduser().read_text()
    else:
        text = typer.prompt("Value", hide_input=True, confirmation_prompt=True)
    # A file or a heredoc ends with a newline that is not part of the value.
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    return text


@handle_errors
def set_(
    name: NameArgument,
    value_file: Annotated[
        str | None,
        typer.Option(
            "--value-file",
            metavar="PATH",
            help="Read the value from this file, or from stdin with '-' (one trailing newline "
            "is dropped). Without it: a hidden prompt, or stdin when it is piped.",
        ),
    ] = None,
    json_value: Annotated[
        bool,
        typer.Option(
            "--json-value", help="Parse the value as JSON (e.g. an object of credentials)."
        ),
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the value if the secret exists.")
    ] = False,
) -> None:
    """Store a secret NAME; its value comes from a prompt, stdin or a file, never argv."""
    from headwater.cli.parsing import BadOptionValue

    text = _read_value(value_file)
    if not text:
        raise BadOptionValue(f"The value of secret {name!r} is empty; nothing was stored.")
    value: Any = text
    if json_value:
        import json

        try:
            value = json.loads(text)
        except ValueError as exc:
            raise BadOptionValue(
                f"--json-value: the value of secret {name!r} is not JSON ({exc.args[0]})."
            ) from None
    client = get_client()
    if overwrite:
        item = client.request("PUT", _path(name), json={"value": value})
    else:
        item = client.request("POST", "/secrets", json={"name": name, "value": value})
    from headwater.cli.output import console

    console().print(
        f"Stored secret {name!r} (encrypted with key {item['key_id']}).",
        highlight=False,
        markup=False,
    )


@handle_errors
def ls(
    contains: Annotated[
        str | None,
        typer.Option("--name", help="Only secrets whose name contains this text."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most this many.")] = 200,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (as the API returns it) instead.")
    ] = False,
) -> None:
    """List secrets by name (never their values)."""
    params: dict[str, Any] = {"limit": min(limit, 1000)}
    if contains:
        params["name_contains"] = contains
    page = get_client().request("GET", "/secrets", params=params)
    items = page["items"][:limit]
    if as_json:
        from headwater.cli.output import print_json

        print_json(items)
        return
    import datetime as dt

    from rich.table import Table
    from rich.text import Text

    from headwater.cli.output import console, local_time

    out = console()
    if not items:
        out.print("No secrets. Store one with `headwater secret set NAME`.")
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("Name", overflow="fold", min_width=6)
    table.add_column("Key", no_wrap=True)
    table.add_column("Created", no_wrap=True)
    table.add_column("Updated", no_wrap=True)
    for item in items:
        table.add_row(
            Text(item["name"]),
            item["key_id"],
            local_time(dt.datetime.fromisoformat(item["created"]).timestamp()),
            local_time(dt.datetime.fromisoformat(item["updated"]).timestamp()),
        )
    out.print(table)
    total = page["total"]
    out.print(f"\n{len(items)} of {total} secret{'s' if total != 1 else ''}.", style="dim")


@handle_errors
def delete(name: NameArgument) -> None:
    """Delete a secret."""
    get_client().request("DELETE", _path(name))
    from headwater.cli.output import console

    console().print(f"Deleted secret {name!r}.", highlight=False, markup=False)


@handle_errors
def generate_key(
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            metavar="PATH",
            help="Write the key to this new file (mode 0600) instead of printing it.",
        ),
    ] = None,
) -> None:
    """Make a new random secret key (a Fernet key) for HEADWATER_SECRET_KEY or a key file."""
    from headwater.server.crypto import generate_key as new_key
    from headwater.server.crypto import parse_key, write_key_file

    key = new_key()
    if file is None:
        typer.echo(key.decode("ascii"))
        return
    path = file.expanduser()
    if path.exists():
        from headwater.cli.parsing import BadOptionValue

        raise BadOptionValue(f"{path} exists; choose another --file, or delete it first.")
    write_key_file(path, key)
    from headwater.cli.output import console

    console().print(
        f"Wrote key {parse_key(key, str(path)).key_id} to {path} (mode 0600).",
        highlight=False,
        markup=False,
    )


@handle_errors
def rotate_key(
    new_key_file: Annotated[
        Path | None,
        typer.Option(
            "--new-key-file",
            metavar="PATH",
            help="The new key (a file of mode 0600, e.g. from `headwater secret generate-key "
            "--file`). Without it a key is generated and written to the key file.",
        ),
    ] = None,
    old_key_file: Annotated[
        list[Path] | None,
        typer.Option(
            "--old-key-file",
            metavar="PATH",
            help="Another key that encrypted secrets (repeatable), besides the configured one.",
        ),
    ] = None,
) -> None:
    """Re-encrypt every secret with a new key, in one transaction, and make it the key.

    Run it where the server runs: with its HEADWATER_DATABASE_URL and its key
    (HEADWATER_SECRET_KEY or the key file), not through HEADWATER_API_URL. With the
    key file, the file is replaced by the new key (a running server uses it at
    once); with HEADWATER_SECRET_KEY, set it to the new key and restart the servers.
    """
    from headwater.server import crypto
    from headwater.settings import get_settings

    settings = get_settings()
    if settings.api_url:
        raise crypto.SecretKeyError(
            "rotate-key works on the server's database with the server's key; run it where "
            "the server runs, with its settings and without HEADWATER_API_URL."
        )
    old_keys = _old_keys(settings, old_key_file or [])
    if new_key_file is not None:
        new = crypto.read_key_file(new_key_file.expanduser())
    elif settings.secret_key:
        raise crypto.SecretKeyError(
            "HEADWATER_SECRET_KEY is set, and this command cannot change it: make a key with "
            "`headwater secret generate-key --file PATH` and pass --new-key-file PATH."
        )
    else:
        new = crypto.parse_key(crypto.generate_key(), "the new key")
    changed = _rotate(settings, old_keys, new)
    from headwater.cli.output import console

    out = console()
    count = f"Re-encrypted {len(changed)} secret{'s' if len(changed) != 1 else ''}"
    if settings.secret_key:
        out.print(
            f"{count} with key {new.key_id}. Now set HEADWATER_SECRET_KEY to the key in "
            f"{new_key_file} for every server and process that reads secrets, and restart "
            "them; the old key is no longer needed.",
            highlight=False,
            markup=False,
        )
        return
    out.print(
        f"{count} with key {new.key_id}; {crypto.key_file_path(settings)} now holds it. The "
        "old key is no longer needed.",
        highlight=False,
        markup=False,
    )


def _old_keys(settings: Settings, files: list[Path]) -> dict[str, SecretKey]:
    from headwater.server import crypto

    keys: dict[str, SecretKey] = {}
    try:
        current = crypto.load_key(settings)
    except crypto.SecretKeyError:
        if settings.secret_key or crypto.key_file_path(settings).exists():
            raise  # a key is configured but unusable: say why
    else:
        keys[current.key_id] = current
    for path in files:
        key = crypto.read_key_file(path.expanduser())
        keys[key.key_id] = key
    return keys


def _rotate(settings: Settings, old_keys: dict[str, SecretKey], new: SecretKey) -> list[str]:
    import time

    from headwater.server import crypto
    from headwater.server.database import Database
    from headwater.server.repositories import secrets

    def convert(name: str, token: str, key_id: str) -> tuple[str, str]:
        key = old_keys.get(key_id)
        if key is None:
            known = ", ".join(sorted(old_keys)) or "none"
            raise crypto.SecretKeyError(
                f"Secret {name!r} was encrypted with key {key_id}, which is not among the keys "
                f"given ({known}); pass its key file with --old-key-file. Nothing was changed."
            )
        return new.encrypt(name, key.decrypt(name, token, key_id)), new.key_id

    database = Database(settings.effective_database_url)
    try:
        database.ensure_schema()
        with database.write() as conn:
            changed = list(
                secrets.reencrypt_all(conn, keep=new.key_id, convert=convert, now=time.time())
            )
        if not settings.secret_key:
            crypto.write_key_file(crypto.key_file_path(settings), new.key)
            # A server may have stored a secret with the old key file until it was replaced.
            with database.write() as conn:
                late = secrets.reencrypt_all(
                    conn, keep=new.key_id, convert=convert, now=time.time()
                )
            changed.extend(name for name in late if name not in changed)
        return changed
    finally:
        database.dispose()


def register(app: typer.Typer) -> None:
    """Add the `secret` command group to `app`."""
    group = typer.Typer(no_args_is_help=True, help=HELP)
    group.command("set")(set_)
    group.command("ls")(ls)
    group.command("delete")(delete)
    group.command("generate-key")(generate_key)
    group.command("rotate-key")(rotate_key)
    app.add_typer(group, name="secret")
