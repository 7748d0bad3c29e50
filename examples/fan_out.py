"""Dynamic fan-out and fan-in with async subflows, a failing branch and allow_failure.

python examples/fan_out.py
"""

from __future__ import annotations

import asyncio

from headwater import allow_failure, flow, get_run_logger, task


@task
async def measure(region: str, sample: int) -> float:
    await asyncio.sleep(0.01)
    return len(region) * sample / 10


@flow
async def region_report(region: str) -> float:
    values = await asyncio.gather(*(measure(region, i) for i in range(10)))
    return sum(values)


@task
def validate(total: float) -> float:
    if total > 100:
        raise ValueError(f"total {total} is implausibly large")
    return total


@task
def summarize(checked: object) -> str:
    if isinstance(checked, Exception):
        return f"validation failed: {checked}"
    return f"validated total {checked}"


@flow
async def fan_out(regions: list[str]) -> str:
    totals = await asyncio.gather(*(region_report(r) for r in regions))
    grand_total = sum(totals)
    get_run_logger().info("grand total over %d regions: %s", len(regions), grand_total)
    checked = validate.submit(grand_total)
    return summarize.submit(allow_failure(checked)).result()


if __name__ == "__main__":
    print(asyncio.run(fan_out(["eu-west", "us-east", "ap-south", "sa-east"])))
