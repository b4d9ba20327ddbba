"""How long a subscription's renewal invoice stays a draft: the merchant's billing settings'
``invoices.finalize_after_seconds`` when set, else ``PAYGRID_INVOICE_FINALIZE_DELAY_SECONDS``
(the schedule's due queries apply the same rule in SQL)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from paygrid.db import billing_settings as settings_db
from paygrid.db.executor import Executor
from paygrid.db.subscriptions import SubscriptionRow
from paygrid.dependencies import Deps
from paygrid.services.billing.settings import load_settings
from paygrid.services.context import Tenant

TenantKey = tuple[str, bool]


def default_delay(deps: Deps) -> timedelta:
    return timedelta(seconds=deps.settings.invoice_finalize_delay_seconds)


async def delay_for(deps: Deps, tenant: Tenant) -> timedelta:
    """The finalize delay of one merchant and mode."""
    seconds = (await load_settings(deps, tenant)).invoices.finalize_after_seconds
    return default_delay(deps) if seconds is None else timedelta(seconds=seconds)


async def delays_of(
    conn: Executor, subs: Iterable[SubscriptionRow], default: timedelta
) -> dict[TenantKey, timedelta]:
    """The finalize delay of each (merchant, mode) of ``subs``."""
    tenants = {(sub.merchant_id, sub.livemode) for sub in subs}
    set_ = await settings_db.finalize_delays(conn, tenants)
    return {
        key: default if set_.get(key) is None else timedelta(seconds=set_[key] or 0)
        for key in tenants
    }


def cutoffs(
    subs: Iterable[SubscriptionRow], delays: dict[TenantKey, timedelta], now: datetime
) -> dict[datetime, list[str]]:
    """The subscriptions' ids by the latest moment their renewal drafts may have been made
    to be finalized now (``now`` minus their merchant's delay)."""
    grouped: dict[datetime, list[str]] = {}
    for sub in subs:
        grouped.setdefault(now - delays[(sub.merchant_id, sub.livemode)], []).append(sub.id)
    return grouped
