"""`import headwater` and a short script stay light: no heavy modules on their path."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

HEAVY = ("sqlalchemy", "alembic", "pydantic", "asyncio", "psycopg", "typer", "rich")


def _loaded(code: str, env: dict[str, str] | None = None) -> set[str]:
    probe = code + "\nimport sys\nprint(' '.join(sorted(sys.modules)))\n"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
    )
    return set(result.stdout.split()[-1:] and result.stdout.splitlines()[-1].split())


def test_import_headwater_loads_nothing_heavy() -> None:
    modules = _loaded("import headwater\nfrom headwater import flow, task, get_run_logger")
    assert not {m for m in modules if m.split(".")[0] in HEAVY}


def test_hello_world_on_an_existing_store_loads_nothing_heavy(tmp_path: Path) -> None:
    hello = textwrap.dedent(
        """
        from headwater import flow, task

        @task
        def greet(name: str) -> str:
            return f"hello {name}"

        @flow
        def hello(name: str = "world") -> str:
            return greet(name)

        hello()
        """
    )
    env = {"HEADWATER_HOME": str(tmp_path)}
    env.pop("HEADWATER_DATABASE_URL", None)
    first = dict(os.environ, **env)
    first.pop("HEADWATER_DATABASE_URL", None)
    subprocess.run([sys.executable, "-c", hello], env=first, check=True, capture_output=True)
    modules = _loaded(hello, env)
    assert not {m for m in modules if m.split(".")[0] in HEAVY}
