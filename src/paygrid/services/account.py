"""``GET``/``POST /v1/account`` and the dashboard's settings page: the authenticated
merchant as an account object, and a change of its time zone (an IANA name, checked by the
same validator as reports' ``timezone``). A change is written with ``account.updated`` in one
transaction, audited by the ``merchants`` table's trigger (``merchant.updated``, the row
before and after, as whoever acts); setting the same zone again writes nothing."""

from __future__ import annotations

from paygrid.db import events as events_db
from paygrid.db import merchants as merchants_db
from paygrid.db.executor import Connection
from paygrid.db.merchants import MerchantRow
from paygrid.dependencies import Deps
from paygrid.domain.errors import ResourceMissing
from paygrid.domain.events import EventType
from paygrid.schemas.account import Account, AccountUpdate
from paygrid.services.context import Tenant
from paygrid.services.reports.parameters import zone


async def get_account(deps: Deps, tenant: Tenant) -> Account:
    """The tenant's merchant."""
    row = await merchants_db.get_merchant(deps.pool, tenant.merchant_id)
    if row is None:
        raise ResourceMissing("This account no longer exists.")
    return _view(row, tenant)


async def update_account(deps: Deps, tenant: Tenant, params: AccountUpdate) -> Account:
    """Change the fields given; an unknown time zone is ``400 parameter_invalid``."""
    if params.timezone is None:
        return await get_account(deps, tenant)
    zone(params.timezone)  # raises InvalidRequest (param ``timezone``)
    async with deps.pool.acquire() as conn, conn.transaction():
        changed = await merchants_db.set_timezone(conn, tenant.merchant_id, params.timezone)
        if changed is None:
            raise ResourceMissing("This account no longer exists.")
        row, before = changed
        view = _view(row, tenant)
        if before == row.timezone:
            return view
        await _emit(conn, tenant, view)
        return view


async def _emit(conn: Connection, tenant: Tenant, view: Account) -> None:
    await events_db.insert_event(
        conn,
        merchant_id=tenant.merchant_id,
        livemode=tenant.livemode,
        event_type=EventType.ACCOUNT_UPDATED.value,
        object_id=view.id,
        snapshot=view.model_dump(mode="json"),
    )


def _view(row: MerchantRow, tenant: Tenant) -> Account:
    return Account(
        id=row.id,
        name=row.name,
        timezone=row.timezone,
        created=int(row.created_at.timestamp()),
        livemode=tenant.livemode,
    )
