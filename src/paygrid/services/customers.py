"""Customers: create, read, update, delete (soft: payments keep their reference), list, and
erase (GDPR: personal data redacted everywhere, the money records kept)."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import orjson

from paygrid.db import customers as customers_db
from paygrid.db import emails as emails_db
from paygrid.db import erasure as erasure_db
from paygrid.db import mandates as mandates_db
from paygrid.db import payment_link_sessions as link_sessions_db
from paygrid.db import test_clocks as test_clocks_db
from paygrid.db.customers import CustomerRow
from paygrid.db.executor import Connection, Executor
from paygrid.db.pagination import PageRequest
from paygrid.dependencies import Deps
from paygrid.domain.erasure import PersonalData
from paygrid.domain.errors import InvalidRequest, ResourceMissing
from paygrid.domain.events import EventType
from paygrid.domain.test_clocks import TestClockStatus, TestModeOnly, not_ready
from paygrid.ids import new_id
from paygrid.schemas.common import MAX_METADATA_KEYS, DeletedObject
from paygrid.schemas.customers import Customer, CustomerCreate, CustomerUpdate
from paygrid.services import audit, method_updates, payment_methods, saved_methods
from paygrid.services.context import Tenant
from paygrid.services.snapshots import emit_object


async def create_customer(deps: Deps, tenant: Tenant, params: CustomerCreate) -> Customer:
    async with deps.pool.acquire() as conn, conn.transaction():
        if params.test_clock is not None:
            await _check_test_clock(conn, tenant, params.test_clock)
        row = await customers_db.insert_customer(
            conn,
            customer_id=new_id("cus"),
            merchant_id=tenant.merchant_id,
            livemode=tenant.livemode,
            email=params.email,
            name=params.name,
            phone=params.phone,
            metadata=params.metadata,
            test_clock_id=params.test_clock,
        )
        return await _emit(conn, row, EventType.CUSTOMER_CREATED)


async def _check_test_clock(conn: Connection, tenant: Tenant, clock_id: str) -> None:
    """A customer joins a test clock of its merchant that is ready, in test mode only; the
    clock stays locked until the customer is written, so a delete or an advance waits."""
    if tenant.livemode:
        raise TestModeOnly(
            "A customer can take a test clock in test mode only.", param="test_clock"
        )
    clock = await test_clocks_db.get_clock(conn, tenant.merchant_id, clock_id, lock=True)
    if clock is None:
        raise InvalidRequest(
            f"No such test clock: '{clock_id}'", param="test_clock", code="resource_missing"
        )
    if clock.status is not TestClockStatus.READY:
        raise not_ready(clock.status, param="test_clock")


async def get_customer(deps: Deps, tenant: Tenant, customer_id: str) -> Customer | DeletedObject:
    row = await _get(deps.pool, tenant, customer_id)
    if row.deleted:
        return DeletedObject(id=row.id, object="customer")
    return Customer.from_row(row)


async def update_customer(
    deps: Deps, tenant: Tenant, customer_id: str, params: CustomerUpdate
) -> Customer:
    """Change only the fields sent; metadata keys merge, and an empty value removes a key."""
    changes = params.model_dump(exclude_unset=True)
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await _get(conn, tenant, customer_id, lock=True, live_only=True)
        if "metadata" in changes:
            changes.update(metadata=_merged_metadata(row.metadata, params.metadata))
        if "invoice_settings" in changes:
            del changes["invoice_settings"]
            settings = params.invoice_settings
            if settings is not None and "default_payment_method" in settings.model_fields_set:
                method = settings.default_payment_method or None
                if method is not None:
                    await saved_methods.require_attached(conn, tenant, method, row.id)
                changes["default_payment_method_id"] = method
        if not changes:
            return Customer.from_row(row)
        updated = await customers_db.update_customer(conn, customer_id, changes)
        method = changes.get("default_payment_method_id")
        if method is not None and method != row.default_payment_method_id:
            # A new default retries the open failed invoices (dunning), once this commits.
            await method_updates.default_method_changed(conn, customer_id)
        return await _emit(conn, updated, EventType.CUSTOMER_UPDATED)


def _merged_metadata(current: dict[str, str], sent: dict[str, str] | None) -> dict[str, str]:
    merged = {**current, **(sent or {})}
    kept = {k: v for k, v in merged.items() if v != ""}
    if len(kept) > MAX_METADATA_KEYS:
        raise InvalidRequest(
            f"metadata can have at most {MAX_METADATA_KEYS} keys; this update would "
            f"leave {len(kept)}.",
            param="metadata",
        )
    return kept


async def delete_customer(
    deps: Deps, tenant: Tenant, customer_id: str, *, before: Departure | None = None
) -> DeletedObject:
    """Soft delete; the customer's payment methods are detached in the same transaction
    (each with ``payment_method.detached``), so nothing can charge them any more.
    ``before`` runs first in that transaction, on the locked row (billing ends the
    customer's subscriptions and invoices: ``services.billing.customer_deletion``)."""
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await _get(conn, tenant, customer_id, lock=True, live_only=True)
        if before is not None:
            await before(conn, row)
        await delete_customer_row(conn, row, deps.clock.now())
    return DeletedObject(id=customer_id, object="customer")


Departure = Callable[[Connection, CustomerRow], Awaitable[None]]
"""What else ends with a customer, in its deleting transaction."""


async def delete_customer_row(conn: Connection, row: CustomerRow, now: datetime) -> None:
    """Delete a customer locked in the caller's transaction (the API's delete, and the
    deletion of its test clock): soft delete at ``now``, detach its methods, emit
    ``customer.deleted``."""
    deleted = await customers_db.mark_deleted(conn, row.id, now)
    await payment_methods.detach_all(conn, row.id, now)
    await _emit(conn, deleted, EventType.CUSTOMER_DELETED)


async def list_customers(
    deps: Deps, tenant: Tenant, page: PageRequest, email: str | None
) -> tuple[list[Customer], bool]:
    rows, has_more = await customers_db.list_customers(
        deps.pool, tenant.merchant_id, tenant.livemode, page, email
    )
    return [Customer.from_row(r) for r in rows], has_more


@dataclass(frozen=True, slots=True)
class Erasure:
    customer_id: str
    payments: int
    payment_methods: int
    events: int
    idempotent_responses: int
    audit_entries: int


# Former metadata values shorter than this are not hunted for in the audit log: the audit
# redaction matches substrings, and "gold" or "1043" would blank unrelated entries.
MIN_AUDIT_METADATA_VALUE = 8


async def erase_customer(
    pool: asyncpg.Pool, merchant_id: str, customer_id: str, actor: str, *, now: datetime
) -> Erasure:
    """Erase a customer's personal data in one transaction: the customer's email, name, phone
    and metadata; the receipt email, description and metadata values of their payments (and
    of payments sent to their email); their payment methods' metadata; their emails'
    addresses and bodies (one not sent yet never is); every event snapshot
    and saved idempotent response that mentions them; and those values in the audit log.
    Their payment methods are detached (``payment_method.detached`` each, written after the
    redaction so the events hold no erased value). Payments, refunds and events stay, so
    the books still add up. The erasure itself is audited (``customer.erased``) with counts,
    never the erased values. Methods are detached at ``now``, the caller's clock."""
    async with pool.acquire() as conn, conn.transaction():
        await erasure_db.act_as(conn, actor)
        row = await erasure_db.lock_customer(conn, merchant_id, customer_id)
        if row is None:
            raise ResourceMissing(f"No such customer: '{customer_id}'", param="id")
        livemode = row.livemode
        person, former_values = await _redact_rows(conn, row)
        erasure = Erasure(
            customer_id,
            len(person.payment_ids),
            len(person.payment_method_ids),
            await _redact_events(conn, merchant_id, livemode, person),
            await _redact_idempotent_responses(conn, merchant_id, livemode, person),
            await audit.redact(conn, merchant_id, former_values),
        )
        await payment_methods.detach_all(conn, customer_id, now)
        await audit.record(
            conn,
            merchant_id=merchant_id,
            livemode=livemode,
            actor=actor,
            action="customer.erased",
            object_type="customer",
            object_id=customer_id,
            before=None,  # the erased values must not survive in the audit log
            after={k: v for k, v in dataclasses.asdict(erasure).items() if k != "customer_id"},
        )
    return erasure


async def _redact_rows(conn: Connection, customer: CustomerRow) -> tuple[PersonalData, set[str]]:
    """Blank the customer's, their payments' and payment methods' personal fields; returns
    who the person is (to redact snapshots) and every value removed (to redact the audit
    log, whose triggers just recorded them)."""
    customer_id = customer.id
    await erasure_db.redact_customer(conn, customer_id)
    payments = await erasure_db.redact_payments(
        conn, customer.merchant_id, customer.livemode, customer_id, customer.email
    )
    methods = await erasure_db.redact_payment_methods(conn, customer_id)
    await mandates_db.redact_for_customer(conn, customer_id)
    await emails_db.erase_for_customer(conn, customer_id)
    await link_sessions_db.redact_for_customer(
        conn, customer.merchant_id, customer.livemode, customer_id, customer.email
    )
    identifying = {customer.email, customer.name, customer.phone}
    identifying |= {p.receipt_email for p in payments}
    needles = {v for v in identifying if v}
    person = PersonalData(
        customer_id=customer_id,
        payment_ids=frozenset(p.id for p in payments),
        payment_method_ids=frozenset(m.id for m in methods),
        needles=tuple(sorted(needles)),
    )
    metadata: list[dict[str, object]] = [dict(customer.metadata)]
    metadata += [p.metadata for p in payments]
    metadata += [m.metadata for m in methods]
    former = needles | {p.description for p in payments if p.description}
    former |= {
        v
        for values in metadata
        for v in values.values()
        if isinstance(v, str) and len(v) >= MIN_AUDIT_METADATA_VALUE
    }
    return person, former


async def _redact_events(
    conn: Connection, merchant_id: str, livemode: bool, person: PersonalData
) -> int:
    object_ids = [person.customer_id, *person.payment_ids, *person.payment_method_ids]
    rows = await erasure_db.events_to_redact(
        conn, merchant_id, livemode, object_ids, list(person.needles)
    )
    changes = [(r.id, person.redact(r.data), r.data) for r in rows]
    changed = [(event_id, data) for event_id, data, before in changes if data != before]
    await erasure_db.update_event_data(conn, changed)
    return len(changed)


async def _redact_idempotent_responses(
    conn: Connection, merchant_id: str, livemode: bool, person: PersonalData
) -> int:
    rows = await erasure_db.idempotent_responses_to_redact(
        conn, merchant_id, livemode, list(person.needles)
    )
    changes = [(r.key, orjson.dumps(person.redact(orjson.loads(r.response_body)))) for r in rows]
    await erasure_db.update_idempotent_responses(conn, merchant_id, livemode, changes)
    return len(changes)


async def _get(
    conn: Executor,
    tenant: Tenant,
    customer_id: str,
    *,
    lock: bool = False,
    live_only: bool = False,
) -> CustomerRow:
    row = await customers_db.get_customer(
        conn, tenant.merchant_id, tenant.livemode, customer_id, lock=lock
    )
    if row is None or (live_only and row.deleted):
        raise ResourceMissing(f"No such customer: '{customer_id}'", param="id")
    return row


async def _emit(conn: Connection, row: CustomerRow, event: EventType) -> Customer:
    view = Customer.from_row(row)
    await emit_object(conn, row, event, view.model_dump(mode="json"))
    return view
