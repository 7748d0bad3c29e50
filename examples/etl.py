"""The README's ETL example: mapped fetches with retries, logged prints, a total.

Runs offline: `fetch` simulates a flaky HTTP call (the first attempt for
"b" times out) so that retries show up in `headwater flow-run inspect`.

    python examples/etl.py
"""

from __future__ import annotations

import random

from headwater import flow, get_run_logger, task, unmapped

_attempts: dict[str, int] = {}


@task(retries=2, retry_delay_seconds=[0.1, 0.5])
def fetch(url: str, timeout: float) -> dict[str, object]:
    _attempts[url] = _attempts.get(url, 0) + 1
    if url == "b" and _attempts[url] == 1:
        raise TimeoutError(f"{url} did not answer within {timeout} s")
    get_run_logger().info("fetched %s on attempt %d", url, _attempts[url])
    return {"url": url, "rows": list(range(random.randint(1, 5)))}


@flow(log_prints=True)
def etl(urls: list[str]) -> int:
    pages = fetch.map(urls, unmapped(5.0))
    total = sum(len(p.result()) for p in pages)
    print(f"loaded {total} fields from {len(urls)} pages")
    return total


if __name__ == "__main__":
    etl(["a", "b"])
