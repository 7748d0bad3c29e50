"""Concurrency limits and their leases.

Taking slots is all or nothing, and atomic under concurrent requests: the
named limits' rows are read and changed in one write transaction, locked
(`SELECT ... FOR UPDATE`, in name order) on PostgreSQL; on SQLite a write
transaction (`BEGIN IMMEDIATE`) already excludes every other writer.

Transactions that touch both leases and limits take the leases first, then
the limits in name order, so that two of them never wait on each other.

Occupied slots are `active_slots` as of `decayed_at`: a limit with
`slot_decay_per_second` frees them continuously, and every change first
brings them to the present.
"""

from __future__ import annotations

import dataclasses
import math
import shlex
import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from headwater.core.ids import uuid7
from headwater.exceptions import ConcurrencySlotsUnavailable, Conflict, ObjectNotFound
from headwater.schemas.common import utc
from headwater.schemas.concurrency import (
    AcquireMode,
    AcquireRequest,
    AcquireResponse,
    ConcurrencyLimitCreate,
    ConcurrencyLimitQuery,
    ConcurrencyLimitResponse,
    ConcurrencyLimitUpdate,
    LeaseResponse,
)
from headwater.server.repositories._common import has_all_tags, page
from headwater.server.services import Outcome
from headwater.store.tables import concurrency_lease, concurrency_limit

if TYPE_CHECKING:
    from headwater.server.database import Database

#: Slack for float sums of slots (a decayed 2.9999999 is 3).
_EPSILON = 1e-9
#: Ids per `IN (...)`, well below SQLite's limit of bound parameters.
_CHUNK = 500


class SlotRequestError(Exception):
    """A request no waiting can satisfy; `field` is the body field at fault (a 422)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def occupied(row: Any, now: float) -> float:
    """Slots of the limit `row` occupied at `now`, after decay."""
    slots = float(row["active_slots"])
    decay = float(row["slot_decay_per_second"])
    if decay > 0 and slots > 0:
        slots = max(0.0, slots - decay * max(0.0, now - float(row["decayed_at"])))
    return slots


def to_response(row: Any, now: float) -> ConcurrencyLimitResponse:
    return ConcurrencyLimitResponse(
        id=row["id"],
        name=row["name"],
        limit=row["limit"],
        active=row["active"],
        active_slots=round(occupied(row, now), 6),
        slot_decay_per_second=row["slot_decay_per_second"],
        created=utc(row["created"]),
        updated=utc(row["updated"]),
    )


def not_found(name: str) -> ObjectNotFound:
    return ObjectNotFound(
        f"No concurrency limit named {name!r}; create it with "
        f"`headwater concurrency-limit create {_shell_word(name)} LIMIT`."
    )


def _shell_word(text: str) -> str:
    return shlex.quote(text)


def _by_name(conn: sa.Connection, name: str, *, lock: bool = False) -> Any:
    query = sa.select(concurrency_limit).where(concurrency_limit.c.name == name)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).mappings().one_or_none()
    if row is None:
        raise not_found(name)
    return row


# -- limits ------------------------------------------------------------------------


def create(
    conn: sa.Connection, *, body: ConcurrencyLimitCreate, now: float
) -> ConcurrencyLimitResponse:
    """Create the limit; Conflict if one has that name."""
    exists = conn.execute(
        sa.select(concurrency_limit.c.id).where(concurrency_limit.c.name == body.name)
    ).first()
    if exists is not None:
        raise Conflict(
            f"A concurrency limit named {body.name!r} already exists; change it with "
            f"`headwater concurrency-limit update {_shell_word(body.name)} ...`."
        )
    values = {
        "id": uuid7(),
        "name": body.name,
        "limit": body.limit,
        "active": body.active,
        "active_slots": 0.0,
        "slot_decay_per_second": body.slot_decay_per_second,
        "decayed_at": now,
        "created": now,
        "updated": now,
    }
    conn.execute(sa.insert(concurrency_limit).values(values))
    return to_response(_by_name(conn, body.name), now)


def list_limits(
    conn: sa.Connection, *, query: ConcurrencyLimitQuery, now: float
) -> tuple[list[ConcurrencyLimitResponse], int]:
    """One page of the limits matching `query`, by name, and how many match in all."""
    select = sa.select(concurrency_limit)
    if query.name_prefix:
        # substr, not LIKE: LIKE ignores case on SQLite and treats _ and % as patterns.
        prefix = query.name_prefix
        select = select.where(sa.func.substr(concurrency_limit.c.name, 1, len(prefix)) == prefix)
    if query.active is not None:
        select = select.where(concurrency_limit.c.active == query.active)
    return page(
        conn,
        select,
        [concurrency_limit.c.name],
        query.offset,
        query.limit,
        lambda row: to_response(row, now),
    )


def read(conn: sa.Connection, *, name: str, now: float) -> ConcurrencyLimitResponse:
    """The limit named `name`; ObjectNotFound if there is none."""
    return to_response(_by_name(conn, name), now)


def update(
    conn: sa.Connection, *, name: str, body: ConcurrencyLimitUpdate, now: float
) -> ConcurrencyLimitResponse:
    """Change the fields `body` sets; occupied slots are kept (decayed to `now` first)."""
    row = _by_name(conn, name, lock=True)
    values: dict[str, Any] = {"updated": now}
    if body.limit is not None:
        values["limit"] = body.limit
    if body.active is not None:
        values["active"] = body.active
    if body.slot_decay_per_second is not None:
        # The slots drained at the old rate until now; the new rate applies from now on.
        values.update(
            active_slots=occupied(row, now),
            decayed_at=now,
            slot_decay_per_second=body.slot_decay_per_second,
        )
    conn.execute(
        sa.update(concurrency_limit).where(concurrency_limit.c.id == row["id"]).values(values)
    )
    return to_response(_by_name(conn, name), now)


def delete(conn: sa.Connection, *, name: str) -> None:
    """Delete the limit; leases that held its slots keep their other limits."""
    row = _by_name(conn, name)
    _detach_leases(conn, row["id"])
    conn.execute(sa.delete(concurrency_limit).where(concurrency_limit.c.id == row["id"]))


def reset(conn: sa.Connection, *, name: str, now: float) -> ConcurrencyLimitResponse:
    """Free every slot of the limit, and take it out of the leases that held some."""
    row = _by_name(conn, name)
    _detach_leases(conn, row["id"])
    conn.execute(
        sa.update(concurrency_limit)
        .where(concurrency_limit.c.id == row["id"])
        .values(active_slots=0.0, decayed_at=now, updated=now)
    )
    return to_response(_by_name(conn, name), now)


def _leases_holding(conn: sa.Connection, limit_id: uuid.UUID, *, lock: bool = False) -> list[Any]:
    query = (
        sa.select(concurrency_lease)
        .where(*has_all_tags(conn, concurrency_lease.c.limit_ids, [limit_id.hex]))
        .order_by(concurrency_lease.c.id)
    )
    if lock:
        query = query.with_for_update()
    return list(conn.execute(query).mappings())


def _detach_leases(conn: sa.Connection, limit_id: uuid.UUID) -> None:
    """Remove the limit from the leases holding it; a lease left with none is deleted."""
    for lease in _leases_holding(conn, limit_id, lock=True):
        remaining = [hex_id for hex_id in lease["limit_ids"] if hex_id != limit_id.hex]
        where = concurrency_lease.c.id == lease["id"]
        if remaining:
            conn.execute(sa.update(concurrency_lease).where(where).values(limit_ids=remaining))
        else:
            conn.execute(sa.delete(concurrency_lease).where(where))


# -- slots and leases ------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _Wanted:
    rows: list[Any]
    missing: list[str]


def _lock_named(conn: sa.Connection, names: Iterable[str]) -> _Wanted:
    wanted = sorted(set(names))
    rows = list(
        conn.execute(
            sa.select(concurrency_limit)
            .where(concurrency_limit.c.name.in_(wanted))
            .order_by(concurrency_limit.c.name)
            .with_for_update()
        ).mappings()
    )
    found = {row["name"] for row in rows}
    return _Wanted(rows, [name for name in wanted if name not in found])


def acquire(conn: sa.Connection, *, request: AcquireRequest, now: float) -> AcquireResponse:
    """Take `request.slots` slots of every named, active limit, or of none.

    Raises:
        ConcurrencySlotsUnavailable: a limit lacks free slots now (nothing was taken).
        SlotRequestError: the request can never succeed (more slots than a limit has,
            or rate_limit on a limit without slot decay).
        ObjectNotFound: `strict` and a name is not a limit.
    """
    wanted = _lock_named(conn, request.names)
    if wanted.missing and request.strict:
        raise not_found(wanted.missing[0])
    slots = request.slots
    rate_limit = request.mode is AcquireMode.RATE_LIMIT
    active = [row for row in wanted.rows if row["active"]]
    for row in active:
        _check_possible(row, slots, rate_limit)
    for row in active:
        taken = occupied(row, now)
        if taken + slots > row["limit"] + _EPSILON:
            raise _unavailable(row, taken, slots)
    for row in active:
        conn.execute(
            sa.update(concurrency_limit)
            .where(concurrency_limit.c.id == row["id"])
            .values(active_slots=occupied(row, now) + slots, decayed_at=now)
        )
    lease_id = expires = None
    if active and not rate_limit:
        lease_id = uuid7()
        expires = now + request.lease_seconds
        conn.execute(
            sa.insert(concurrency_lease).values(
                id=lease_id,
                limit_ids=[row["id"].hex for row in active],
                slots=slots,
                holder=request.holder,
                expires=expires,
                created=now,
            )
        )
    return AcquireResponse(
        lease_id=lease_id,
        expires=utc(expires),
        limits=[row["name"] for row in active],
        missing=wanted.missing,
    )


def _check_possible(row: Any, slots: int, rate_limit: bool) -> None:
    name = _shell_word(row["name"])
    if row["limit"] == 0:
        raise SlotRequestError(
            "slots",
            f"Concurrency limit {row['name']!r} has 0 slots, so it refuses everything; give it "
            f"some with `headwater concurrency-limit update {name} --limit N`.",
        )
    if slots > row["limit"]:
        raise SlotRequestError(
            "slots",
            f"{slots} slot(s) asked for, but concurrency limit {row['name']!r} has only "
            f"{row['limit']}; ask for at most {row['limit']}, or raise it with "
            f"`headwater concurrency-limit update {name} --limit {slots}`.",
        )
    if rate_limit and row["slot_decay_per_second"] <= 0:
        raise SlotRequestError(
            "mode",
            f"rate_limit needs slot decay, and concurrency limit {row['name']!r} has none "
            f"(its slots would stay taken); set it with `headwater concurrency-limit update "
            f"{name} --slot-decay-per-second RATE`, or use concurrency().",
        )


def _unavailable(row: Any, taken: float, slots: int) -> ConcurrencySlotsUnavailable:
    retry_after = None
    if row["slot_decay_per_second"] > 0:
        retry_after = max(0.0, (taken + slots - row["limit"]) / row["slot_decay_per_second"])
    free = max(0.0, row["limit"] - taken)
    return ConcurrencySlotsUnavailable(
        f"Concurrency limit {row['name']!r} has {free:g} of {row['limit']} slot(s) free, "
        f"{slots} asked for.",
        limit=row["name"],
        retry_after=retry_after,
    )


def _names_of(conn: sa.Connection, hex_ids: Iterable[str]) -> dict[str, str]:
    ids = sorted({uuid.UUID(hex_id) for hex_id in hex_ids})
    names: dict[str, str] = {}
    for start in range(0, len(ids), _CHUNK):
        query = sa.select(concurrency_limit.c.id, concurrency_limit.c.name).where(
            concurrency_limit.c.id.in_(ids[start : start + _CHUNK])
        )
        names.update((row.id.hex, row.name) for row in conn.execute(query))
    return names


def _lease_response(row: Any, names: dict[str, str]) -> LeaseResponse:
    return LeaseResponse(
        id=row["id"],
        limits=[names[hex_id] for hex_id in row["limit_ids"] if hex_id in names],
        slots=row["slots"],
        holder=row["holder"],
        expires=utc(row["expires"]),
        created=utc(row["created"]),
    )


def lease_gone(lease_id: uuid.UUID) -> ObjectNotFound:
    return ObjectNotFound(
        f"No concurrency lease {str(lease_id)!r}: it was released, or it expired (not renewed "
        "in time) and its slots were freed; acquire the slots again."
    )


def renew(
    conn: sa.Connection, *, lease_id: uuid.UUID, lease_seconds: float, now: float
) -> LeaseResponse:
    """Push the lease's expiry to `now + lease_seconds`; ObjectNotFound if it is gone."""
    result = conn.execute(
        sa.update(concurrency_lease)
        .where(concurrency_lease.c.id == lease_id)
        .values(expires=now + lease_seconds)
    )
    if result.rowcount == 0:
        raise lease_gone(lease_id)
    row = (
        conn.execute(sa.select(concurrency_lease).where(concurrency_lease.c.id == lease_id))
        .mappings()
        .one()
    )
    return _lease_response(row, _names_of(conn, row["limit_ids"]))


def release(conn: sa.Connection, *, lease_id: uuid.UUID, now: float) -> bool:
    """Delete the lease and free its slots; False if it was already gone."""
    deleted = (
        conn.execute(
            sa.delete(concurrency_lease)
            .where(concurrency_lease.c.id == lease_id)
            .returning(concurrency_lease.c.limit_ids, concurrency_lease.c.slots)
        )
        .mappings()
        .one_or_none()
    )
    if deleted is None:
        return False
    _free(conn, {hex_id: deleted["slots"] for hex_id in deleted["limit_ids"]}, now)
    return True


def leases_of(conn: sa.Connection, *, name: str) -> list[LeaseResponse]:
    """The leases holding slots of the limit named `name`, oldest first."""
    row = _by_name(conn, name)
    leases = sorted(_leases_holding(conn, row["id"]), key=lambda lease: lease["created"])
    names = _names_of(conn, (hex_id for lease in leases for hex_id in lease["limit_ids"]))
    return [_lease_response(lease, names) for lease in leases]


def _free(conn: sa.Connection, slots_by_limit: dict[str, int], now: float) -> None:
    """Give back slots to limits (hex id -> slots), locking the limits in name order."""
    ids = sorted(uuid.UUID(hex_id) for hex_id in slots_by_limit)
    for start in range(0, len(ids), _CHUNK):
        rows = conn.execute(
            sa.select(concurrency_limit)
            .where(concurrency_limit.c.id.in_(ids[start : start + _CHUNK]))
            .order_by(concurrency_limit.c.name)
            .with_for_update()
        ).mappings()
        for row in rows:
            left = max(0.0, occupied(row, now) - slots_by_limit[row["id"].hex])
            conn.execute(
                sa.update(concurrency_limit)
                .where(concurrency_limit.c.id == row["id"])
                .values(active_slots=left, decayed_at=now)
            )


def any_expired(conn: sa.Connection, *, now: float) -> bool:
    """Whether a lease expired before `now` (a cheap read before `expire` writes)."""
    query = sa.select(concurrency_lease.c.id).where(concurrency_lease.c.expires < now).limit(1)
    return conn.execute(query).first() is not None


def expire(conn: sa.Connection, *, now: float) -> int:
    """Delete the leases that expired before `now` and free their slots; how many."""
    expired = list(
        conn.execute(
            sa.select(
                concurrency_lease.c.id, concurrency_lease.c.limit_ids, concurrency_lease.c.slots
            )
            .where(concurrency_lease.c.expires < now)
            .order_by(concurrency_lease.c.id)
            # Another transaction releasing or expiring one of them takes care of it.
            .with_for_update(skip_locked=True)
        ).mappings()
    )
    if not expired:
        return 0
    freed: dict[str, int] = {}
    for lease in expired:
        for hex_id in lease["limit_ids"]:
            freed[hex_id] = freed.get(hex_id, 0) + lease["slots"]
    ids: Sequence[uuid.UUID] = [lease["id"] for lease in expired]
    for start in range(0, len(ids), _CHUNK):
        conn.execute(
            sa.delete(concurrency_lease).where(
                concurrency_lease.c.id.in_(ids[start : start + _CHUNK])
            )
        )
    _free(conn, freed, now)
    return len(expired)


def expire_leases(db: Database, now: float) -> Outcome:
    """The services' round: free the slots of leases whose holders stopped renewing them."""
    with db.write() as conn:
        return Outcome(changed=expire(conn, now=now))


def retry_after_header(retry_after: float | None) -> str:
    """`Retry-After` (whole seconds, at least 1) for a hint in seconds."""
    return str(max(1, math.ceil(retry_after or 0)))
