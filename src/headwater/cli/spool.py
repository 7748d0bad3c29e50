"""`headwater spool flush`: deliver run records spooled while the server was unreachable."""

from __future__ import annotations

from typing import Annotated

import typer

from headwater.cli.session import handle_errors


@handle_errors
def flush(
    timeout: Annotated[
        float, typer.Option(help="Seconds to keep retrying while the server does not answer.")
    ] = 30.0,
) -> None:
    """Send the run records spooled for the server of HEADWATER_API_URL now."""
    from headwater.client import flush_spool
    from headwater.settings import get_settings

    result = flush_spool(get_settings(), timeout=timeout)
    typer.echo(
        f"Delivered {result.delivered} spooled batch(es) to {result.api_url}; "
        f"{result.remaining} left in {result.spool_directory}."
    )
    if result.remaining:
        raise typer.Exit(1)
