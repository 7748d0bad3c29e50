"""The smallest flow: one flow, one task.

python examples/hello.py
"""

from __future__ import annotations

from headwater import flow, task


@task
def greet(name: str) -> str:
    return f"hello, {name}"


@flow(log_prints=True)
def hello(name: str = "world") -> str:
    message = greet(name)
    print(message)
    return message


if __name__ == "__main__":
    hello()
