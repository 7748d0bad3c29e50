"""Global concurrency limits and rate limits, as in Prefect 3.

    from headwater.concurrency.sync import concurrency, rate_limit      # in sync code
    from headwater.concurrency.asyncio import concurrency, rate_limit   # in async code

    with concurrency("database", occupy=2):
        ...                       # at most `limit` slots of "database" are taken at once

    rate_limit("openai")          # waits for a slot of a limit whose slots decay

Limits are made with `headwater concurrency-limit create NAME LIMIT`. A limit
named `tag:<tag>` also limits the task runs tagged <tag> (one slot each).
This package imports nothing heavy; the modules above load the API client
when first used.
"""
