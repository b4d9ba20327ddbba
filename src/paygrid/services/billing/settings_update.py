"""``GET``/``POST /v1/billing_settings`` and the dashboard's settings page: read a tenant's
billing settings, and change some of them (Stripe-style: only the fields given change). An
update is validated over the whole result, written with ``billing_settings.updated`` in one
transaction, and audited by the table's trigger."""

from __future__ import annotations

from typing import Any

from paygrid.db import billing_settings as settings_db
from paygrid.db.billing_settings import BillingSettingsRow
from paygrid.dependencies import Deps
from paygrid.domain.billing_settings import DEFAULT_BILLING_SETTINGS, from_stored, validate
from paygrid.domain.events import EventType
from paygrid.domain.invoices import default_prefix
from paygrid.ids import new_id
from paygrid.schemas.billing_settings import BillingSettingsObject, BillingSettingsUpdate
from paygrid.services.context import Tenant
from paygrid.services.snapshots import emit_object


async def get_billing_settings(deps: Deps, tenant: Tenant) -> BillingSettingsObject:
    """The tenant's settings, with the defaults for what was never set."""
    row = await settings_db.get_settings(deps.pool, tenant.merchant_id, tenant.livemode)
    return _view(tenant, row)


async def update_billing_settings(
    deps: Deps, tenant: Tenant, params: BillingSettingsUpdate
) -> BillingSettingsObject:
    """Change the fields given; 400 ``billing_settings_invalid`` (naming the field) when
    the result is out of limits, and nothing is written."""
    changes = params.changes()
    async with deps.pool.acquire() as conn, conn.transaction():
        current = await settings_db.get_settings(
            conn, tenant.merchant_id, tenant.livemode, lock=True
        )
        stored = current.sections() if current is not None else {}
        validate(from_stored(_merged(stored, changes)))
        if not changes:
            return _view(tenant, current)
        row = await settings_db.merge_settings(
            conn,
            settings_id=current.id if current is not None else new_id("bset"),
            merchant_id=tenant.merchant_id,
            livemode=tenant.livemode,
            changes=changes,
            now=deps.clock.now(),
        )
        view = _view(tenant, row)
        await emit_object(
            conn, row, EventType.BILLING_SETTINGS_UPDATED, view.model_dump(mode="json")
        )
        return view


def _merged(
    stored: dict[str, dict[str, Any]], changes: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    return {
        section: {**stored.get(section, {}), **changes.get(section, {})}
        for section in {*stored, *changes}
    }


def _view(tenant: Tenant, row: BillingSettingsRow | None) -> BillingSettingsObject:
    settings = DEFAULT_BILLING_SETTINGS if row is None else from_stored(row.sections())
    return BillingSettingsObject.of(
        settings,
        livemode=tenant.livemode,
        default_prefix=default_prefix(tenant.merchant_id),
        updated=None if row is None else int(row.updated_at.timestamp()),
    )
