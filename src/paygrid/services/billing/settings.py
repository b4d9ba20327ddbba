"""A merchant's billing settings (issue 14 §1), read by every use case through
``load_settings``: the stored fields over the defaults of ``domain.billing_settings``.
``GET``/``POST /v1/billing_settings`` are ``billing_settings_api``."""

from __future__ import annotations

from paygrid.db import billing_settings as settings_db
from paygrid.db.executor import Executor
from paygrid.dependencies import Deps
from paygrid.domain.billing_settings import (
    DEFAULT_BILLING_SETTINGS,
    BillingSettings,
    from_stored,
)
from paygrid.services.context import Tenant


async def load_settings(
    deps: Deps, tenant: Tenant, conn: Executor | None = None
) -> BillingSettings:
    """The tenant's billing settings (the defaults for what was never set); on ``conn``
    when given, so a transaction reads what it wrote."""
    row = await settings_db.get_settings(
        conn if conn is not None else deps.pool, tenant.merchant_id, tenant.livemode
    )
    return DEFAULT_BILLING_SETTINGS if row is None else from_stored(row.sections())
