"""Test clock rows, their guarded status changes, and the customers that run on them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from paygrid.db.executor import Connection, Executor
from paygrid.db.pagination import Filters, PageRequest, fetch_page
from paygrid.domain.test_clocks import TestClockStatus


@dataclass(frozen=True, slots=True)
class TestClockRow:
    """One ``test_clocks`` row; ``advancing_to`` is set exactly while it is advancing."""

    __test__ = False

    id: str
    merchant_id: str
    livemode: bool
    name: str | None
    frozen_time: datetime
    status: TestClockStatus
    advancing_to: datetime | None
    failure_reason: str | None
    created_at: datetime
    deletes_after: datetime
    deleted_at: datetime | None

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> TestClockRow:
        return cls(
            id=record["id"],
            merchant_id=record["merchant_id"],
            livemode=record["livemode"],
            name=record["name"],
            frozen_time=record["frozen_time"],
            status=TestClockStatus(record["status"]),
            advancing_to=record["advancing_to"],
            failure_reason=record["failure_reason"],
            created_at=record["created_at"],
            deletes_after=record["deletes_after"],
            deleted_at=record["deleted_at"],
        )


def _row(record: asyncpg.Record | None) -> TestClockRow | None:
    return None if record is None else TestClockRow.from_record(record)


async def insert_clock(
    conn: Executor,
    *,
    clock_id: str,
    merchant_id: str,
    name: str | None,
    frozen_time: datetime,
    created_at: datetime,
    deletes_after: datetime,
) -> TestClockRow:
    record = await conn.fetchrow(
        "INSERT INTO test_clocks"
        " (id, merchant_id, livemode, name, frozen_time, created_at, deletes_after)"
        " VALUES ($1, $2, false, $3, $4, $5, $6) RETURNING *",
        clock_id,
        merchant_id,
        name,
        frozen_time,
        created_at,
        deletes_after,
    )
    assert record is not None
    return TestClockRow.from_record(record)


async def get_clock(
    conn: Executor, merchant_id: str, clock_id: str, *, lock: bool = False
) -> TestClockRow | None:
    """A merchant's clock that is not deleted."""
    record = await conn.fetchrow(
        "SELECT * FROM test_clocks WHERE id = $1 AND merchant_id = $2 AND deleted_at IS NULL"
        + (" FOR UPDATE" if lock else ""),
        clock_id,
        merchant_id,
    )
    return _row(record)


async def get_by_id(conn: Executor, clock_id: str) -> TestClockRow | None:
    """Any clock by id, deleted or not (the advance job knows only the id)."""
    return _row(await conn.fetchrow("SELECT * FROM test_clocks WHERE id = $1", clock_id))


async def list_clocks(
    conn: Executor, merchant_id: str, page: PageRequest
) -> tuple[list[TestClockRow], bool]:
    filters = Filters()
    filters.add("merchant_id = $?", merchant_id)
    filters.add("livemode = $?", False)
    filters.clauses.append("deleted_at IS NULL")
    records, has_more = await fetch_page(conn, "test_clocks", filters, page)
    return [TestClockRow.from_record(r) for r in records], has_more


async def start_advance(
    conn: Connection, merchant_id: str, clock_id: str, target: datetime
) -> TestClockRow | None:
    """``ready`` -> ``advancing`` towards a later ``target``; ``None`` when the clock is not
    ready (or missing, deleted, or already at or past ``target``): only one of two
    concurrent advances moves it."""
    record = await conn.fetchrow(
        "UPDATE test_clocks SET status = 'advancing', advancing_to = $3"
        " WHERE id = $1 AND merchant_id = $2 AND deleted_at IS NULL"
        " AND status = 'ready' AND frozen_time < $3 RETURNING *",
        clock_id,
        merchant_id,
        target,
    )
    return _row(record)


async def move_time(conn: Executor, clock_id: str, moment: datetime) -> bool:
    """While advancing, move ``frozen_time`` forward to ``moment`` (never backwards, never
    past the target); false when the clock is no longer advancing."""
    done = await conn.fetchval(
        "UPDATE test_clocks SET frozen_time = greatest(frozen_time, $2)"
        " WHERE id = $1 AND status = 'advancing' AND $2 <= advancing_to RETURNING true",
        clock_id,
        moment,
    )
    return bool(done)


async def finish_advance(conn: Connection, clock_id: str) -> TestClockRow | None:
    """``advancing`` -> ``ready`` at the target; ``None`` when it was not advancing."""
    record = await conn.fetchrow(
        "UPDATE test_clocks SET status = 'ready', frozen_time = advancing_to, advancing_to = NULL"
        " WHERE id = $1 AND status = 'advancing' RETURNING *",
        clock_id,
    )
    return _row(record)


async def fail_advance(conn: Connection, clock_id: str, reason: str) -> TestClockRow | None:
    """``advancing`` -> ``internal_failure``, keeping the time it reached."""
    record = await conn.fetchrow(
        "UPDATE test_clocks SET status = 'internal_failure', advancing_to = NULL,"
        " failure_reason = $2 WHERE id = $1 AND status = 'advancing' RETURNING *",
        clock_id,
        reason,
    )
    return _row(record)


async def mark_deleted(conn: Connection, clock_id: str, now: datetime) -> TestClockRow:
    record = await conn.fetchrow(
        "UPDATE test_clocks SET deleted_at = $2 WHERE id = $1 RETURNING *", clock_id, now
    )
    assert record is not None
    return TestClockRow.from_record(record)


async def abandoned(conn: Executor, job_kind: str) -> list[str]:
    """Clocks still ``advancing`` with no live job of ``job_kind`` to finish them (their
    last attempt's worker died, or the job is dead). The job's unique key is
    ``<kind>:<clock id>:<target as Unix seconds>`` (``services.billing.clock_advance``)."""
    rows = await conn.fetch(
        "SELECT c.id FROM test_clocks c WHERE c.status = 'advancing' AND NOT EXISTS ("
        " SELECT 1 FROM jobs j WHERE j.status IN ('queued', 'failed', 'running')"
        " AND j.unique_key = $1 || ':' || c.id || ':'"
        " || floor(extract(epoch FROM c.advancing_to))::bigint)",
        job_kind,
    )
    return [str(r["id"]) for r in rows]


async def customer_ids(conn: Executor, clock_id: str) -> list[str]:
    """The clock's customers that are not deleted, oldest first."""
    rows = await conn.fetch(
        "SELECT id FROM customers WHERE test_clock_id = $1 AND deleted_at IS NULL ORDER BY id",
        clock_id,
    )
    return [str(r["id"]) for r in rows]


async def clock_of_customer(conn: Executor, customer_id: str) -> TestClockRow | None:
    """The test clock a customer was created on, if any (deleted clocks too: their
    customers' time stays frozen where the clock left it)."""
    record = await conn.fetchrow(
        "SELECT c.* FROM test_clocks c JOIN customers cu ON cu.test_clock_id = c.id"
        " WHERE cu.id = $1",
        customer_id,
    )
    return _row(record)
