"""Time-ordered ids (UUID version 7), created client-side without a round trip."""

from __future__ import annotations

import random
import time
import uuid

_getrandbits = random.getrandbits
_time_ns = time.time_ns
_VERSION_AND_VARIANT = (0x7 << 76) | (0x2 << 62)


def uuid7_hex() -> str:
    """A new UUIDv7 as 32 lowercase hex digits: 48 bits of Unix milliseconds, 74 random.

    Ids sort by creation time, which keeps B-tree inserts at the right edge
    of the index. `random` is reseeded by the interpreter after a fork, so a
    forked worker never repeats its parent's ids. The engine keeps ids in this
    form (the embedded store's own) and makes `uuid.UUID` objects on demand.
    """
    rand = _getrandbits(74)
    return "%032x" % (
        ((_time_ns() // 1_000_000) << 80)
        | _VERSION_AND_VARIANT
        | ((rand >> 62) << 64)  # 12 bits of rand_a
        | (rand & 0x3FFF_FFFF_FFFF_FFFF)  # 62 bits of rand_b
    )


def uuid7() -> uuid.UUID:
    """A new UUIDv7 as a `uuid.UUID`."""
    return uuid.UUID(uuid7_hex())


_FLOW_NAMESPACE = uuid.UUID("5a1e6f0e-8c4b-4f0e-9a51-6c2f7d1b9e40")


def flow_id(name: str) -> str:
    """The id (hex) of the flow called `name`: the same in every process and store."""
    return uuid.uuid5(_FLOW_NAMESPACE, name).hex
