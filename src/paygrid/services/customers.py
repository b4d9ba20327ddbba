"""Customers: create, read, update, delete (soft: payments keep their reference), list."""

from __future__ import annotations

import asyncpg

from paygrid.db import customers as customers_db
from paygrid.db.executor import Connection, Executor
from paygrid.db.pagination import PageRequest
from paygrid.domain.errors import InvalidRequest, ResourceMissing
from paygrid.domain.events import EventType
from paygrid.ids import new_id
from paygrid.schemas.common import MAX_METADATA_KEYS, DeletedObject
from paygrid.schemas.customers import Customer, CustomerCreate, CustomerUpdate
from paygrid.services.context import Deps, Tenant
from paygrid.services.snapshots import emit


async def create_customer(deps: Deps, tenant: Tenant, params: CustomerCreate) -> Customer:
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await customers_db.insert_customer(
            conn,
            customer_id=new_id("cus"),
            merchant_id=tenant.merchant_id,
            livemode=tenant.livemode,
            email=params.email,
            name=params.name,
            phone=params.phone,
            metadata=params.metadata,
        )
        return await _emit(conn, row, EventType.CUSTOMER_CREATED)


async def get_customer(deps: Deps, tenant: Tenant, customer_id: str) -> Customer | DeletedObject:
    row = await _get(deps.pool, tenant, customer_id)
    if row["deleted_at"] is not None:
        return DeletedObject(id=row["id"], object="customer")
    return Customer.from_row(row)


async def update_customer(
    deps: Deps, tenant: Tenant, customer_id: str, params: CustomerUpdate
) -> Customer:
    """Change only the fields sent; metadata keys merge, and an empty value removes a key."""
    changes = params.model_dump(exclude_unset=True)
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await _get(conn, tenant, customer_id, lock=True, live_only=True)
        if "metadata" in changes:
            merged = {**row["metadata"], **(changes["metadata"] or {})}
            changes["metadata"] = {k: v for k, v in merged.items() if v != ""}
            if len(changes["metadata"]) > MAX_METADATA_KEYS:
                raise InvalidRequest(
                    f"metadata can have at most {MAX_METADATA_KEYS} keys; this update would "
                    f"leave {len(changes['metadata'])}.",
                    param="metadata",
                )
        if not changes:
            return Customer.from_row(row)
        updated = await customers_db.update_customer(conn, customer_id, changes)
        return await _emit(conn, updated, EventType.CUSTOMER_UPDATED)


async def delete_customer(deps: Deps, tenant: Tenant, customer_id: str) -> DeletedObject:
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await _get(conn, tenant, customer_id, lock=True, live_only=True)
        deleted = await customers_db.mark_deleted(conn, row["id"])
        await _emit(conn, deleted, EventType.CUSTOMER_DELETED)
    return DeletedObject(id=customer_id, object="customer")


async def list_customers(
    deps: Deps, tenant: Tenant, page: PageRequest, email: str | None
) -> tuple[list[Customer], bool]:
    rows, has_more = await customers_db.list_customers(
        deps.pool, tenant.merchant_id, tenant.livemode, page, email
    )
    return [Customer.from_row(r) for r in rows], has_more


async def _get(
    conn: Executor,
    tenant: Tenant,
    customer_id: str,
    *,
    lock: bool = False,
    live_only: bool = False,
) -> asyncpg.Record:
    row = await customers_db.get_customer(
        conn, tenant.merchant_id, tenant.livemode, customer_id, lock=lock
    )
    if row is None or (live_only and row["deleted_at"] is not None):
        raise ResourceMissing(f"No such customer: '{customer_id}'", param="id")
    return row


async def _emit(conn: Connection, row: asyncpg.Record, event: EventType) -> Customer:
    view = Customer.from_row(row)
    await emit(conn, row, event, view.model_dump(mode="json"))
    return view
