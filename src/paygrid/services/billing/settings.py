"""A merchant's billing settings (issue 14 §1).

PLACEHOLDER: returns the defaults until the settings are stored (``/v1/billing_settings``).
Every use case reads settings through ``load_settings`` so that storing them changes nothing
for its callers."""

from __future__ import annotations

from paygrid.db.executor import Executor
from paygrid.dependencies import Deps
from paygrid.domain.billing_settings import DEFAULT_BILLING_SETTINGS, BillingSettings
from paygrid.services.context import Tenant


async def load_settings(
    deps: Deps, tenant: Tenant, conn: Executor | None = None
) -> BillingSettings:
    """The tenant's billing settings (the defaults for what was never set)."""
    del deps, tenant, conn
    return DEFAULT_BILLING_SETTINGS
