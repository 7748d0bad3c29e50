"""Pure domain: states, orchestration rules, retry policy, ids and time. No I/O."""
