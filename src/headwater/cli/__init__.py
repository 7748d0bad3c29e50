"""The `headwater` command line."""

from __future__ import annotations


def main() -> None:
    """Entry point of the `headwater` script."""
    from headwater.cli.app import create_app

    create_app()()
