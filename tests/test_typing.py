"""`@flow` and `@task` keep the decorated function's signature for type checkers."""

from __future__ import annotations

import textwrap
from pathlib import Path

from mypy import api

SNIPPET = textwrap.dedent(
    """
    from headwater import flow, task
    from headwater.futures import HeadwaterFuture

    @task
    def double(x: int) -> int:
        return 2 * x

    @task(retries=2)
    def label(x: int, prefix: str = "n") -> str:
        return f"{prefix}{x}"

    @flow(log_prints=True)
    def pipeline(n: int) -> str:
        future: HeadwaterFuture[int] = double.submit(n)
        return label(future.result())

    ok: str = pipeline(3)
    wrong_argument = double("three")
    wrong_result: int = label(1)
    """
)


def test_decorated_functions_keep_their_signatures(tmp_path: Path) -> None:
    module = tmp_path / "typed_flows.py"
    module.write_text(SNIPPET)
    out, _err, status = api.run(
        ["--strict", "--no-incremental", "--cache-dir", str(tmp_path / ".mypy"), str(module)]
    )
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert status == 1, out
    assert len(errors) == 2, out
    assert 'Argument 1 to "__call__" of "Task" has incompatible type "str"' in errors[0]
    assert 'Incompatible types in assignment (expression has type "str"' in errors[1]
