"""Test clocks: create, retrieve, list, delete (with their customers), and advance, which
hands the work to the ``test_clocks.advance`` job (``services.billing.clock_advance``).

Test mode only: a live key gets ``test_mode_only``. A merchant sees only its own clocks.
"""

from __future__ import annotations

from datetime import UTC, datetime

from paygrid.db import customers as customers_db
from paygrid.db import jobs as jobs_db
from paygrid.db import test_clocks as test_clocks_db
from paygrid.db.executor import Connection, Executor
from paygrid.db.test_clocks import TestClockRow
from paygrid.dependencies import Deps
from paygrid.domain.errors import ResourceMissing
from paygrid.domain.events import EventType
from paygrid.domain.pagination import PageRequest
from paygrid.domain.test_clocks import (
    LIFETIME,
    FrozenTimeNotAfterCurrent,
    TestClockStatus,
    TestModeOnly,
    advance_allowed,
    not_ready,
)
from paygrid.ids import new_id
from paygrid.schemas.common import DeletedObject
from paygrid.schemas.test_clocks import TestClock, TestClockAdvance, TestClockCreate
from paygrid.services import customers
from paygrid.services.billing import clock_advance, customer_deletion
from paygrid.services.context import Tenant
from paygrid.services.snapshots import emit_object


def _test_mode(tenant: Tenant) -> str:
    """The merchant, once the request is known to be in test mode."""
    if tenant.livemode:
        raise TestModeOnly()
    return tenant.merchant_id


async def create_clock(deps: Deps, tenant: Tenant, params: TestClockCreate) -> TestClock:
    """A ``ready`` clock at ``frozen_time`` (``test_clock.created``)."""
    merchant_id = _test_mode(tenant)
    now = deps.clock.now()
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await test_clocks_db.insert_clock(
            conn,
            clock_id=new_id("clock"),
            merchant_id=merchant_id,
            name=params.name,
            frozen_time=_from_unix(params.frozen_time),
            created_at=now,
            deletes_after=now + LIFETIME,
        )
        return await _emit(conn, row, EventType.TEST_CLOCK_CREATED)


async def get_clock(deps: Deps, tenant: Tenant, clock_id: str) -> TestClock:
    return TestClock.from_row(await _get(deps.pool, tenant, clock_id))


async def list_clocks(
    deps: Deps, tenant: Tenant, page: PageRequest
) -> tuple[list[TestClock], bool]:
    rows, has_more = await test_clocks_db.list_clocks(deps.pool, _test_mode(tenant), page)
    return [TestClock.from_row(r) for r in rows], has_more


async def advance_clock(
    deps: Deps, tenant: Tenant, clock_id: str, params: TestClockAdvance
) -> TestClock:
    """Start moving the clock forward to ``frozen_time``: it is ``advancing`` (with
    ``test_clock.advancing``) until the worker has run everything due up to there. Refused
    while it is advancing already, so two advances never run at once."""
    target = _from_unix(params.frozen_time)
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await _get(conn, tenant, clock_id, lock=True)
        if row.status is not TestClockStatus.READY:
            raise not_ready(row.status)
        if not advance_allowed(row.frozen_time, target):
            raise FrozenTimeNotAfterCurrent(
                f"frozen_time must be after the clock's frozen_time "
                f"({int(row.frozen_time.timestamp())}).",
                param="frozen_time",
            )
        advancing = await test_clocks_db.start_advance(conn, row.merchant_id, row.id, target)
        assert advancing is not None  # locked and checked above
        await jobs_db.enqueue(
            conn,
            clock_advance.ADVANCE,
            clock_advance.job_payload(row.id, target),
            queue=clock_advance.QUEUE,
            unique_key=clock_advance.advance_key(row.id, target),
        )
        return await _emit(conn, advancing, EventType.TEST_CLOCK_ADVANCING)


async def delete_clock(deps: Deps, tenant: Tenant, clock_id: str) -> DeletedObject:
    """Delete the clock and its customers (each as ``DELETE /v1/customers/{id}`` does),
    in one transaction. Refused while it is advancing."""
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await _get(conn, tenant, clock_id, lock=True)
        if row.status is TestClockStatus.ADVANCING:
            raise not_ready(row.status)
        now = deps.clock.now()
        for customer_id in await test_clocks_db.customer_ids(conn, row.id):
            customer = await customers_db.get_customer(
                conn, row.merchant_id, row.livemode, customer_id, lock=True
            )
            if customer is not None and not customer.deleted:
                # Its subscriptions and invoices end at the clock's time, as it reads.
                await customer_deletion.end_billing(
                    conn, customer, row.frozen_time, base_url=deps.settings.base_url()
                )
                await customers.delete_customer_row(conn, customer, now)
        deleted = await test_clocks_db.mark_deleted(conn, row.id, now)
        await _emit(conn, deleted, EventType.TEST_CLOCK_DELETED)
    return DeletedObject(id=row.id, object="test_clock")


async def _get(
    conn: Executor, tenant: Tenant, clock_id: str, *, lock: bool = False
) -> TestClockRow:
    row = await test_clocks_db.get_clock(conn, _test_mode(tenant), clock_id, lock=lock)
    if row is None:
        raise ResourceMissing(f"No such test clock: '{clock_id}'", param="id")
    return row


async def _emit(conn: Connection, row: TestClockRow, event: EventType) -> TestClock:
    view = TestClock.from_row(row)
    await emit_object(conn, row, event, view.model_dump(mode="json"))
    return view


def _from_unix(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
