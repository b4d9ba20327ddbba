"""``POST /v1/subscriptions``: a subscription, its items and (without a trial) its first
invoice, charged as ``payment_behavior`` says, all on the customer's clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from paygrid.db import subscriptions as subs_db
from paygrid.db import transactions
from paygrid.db.executor import Connection
from paygrid.db.prices import PriceRow
from paygrid.db.subscriptions import SubscriptionItemRow, SubscriptionRow
from paygrid.dependencies import Deps
from paygrid.domain import subscriptions as domain
from paygrid.domain.billing_dates import Cycle, Period, boundary, period_index
from paygrid.domain.catalog import RecurringInterval
from paygrid.domain.errors import InvalidRequest, PaygridError
from paygrid.domain.events import EventType
from paygrid.domain.invoices import BillingReason, CollectionMethod
from paygrid.domain.subscriptions import SubscriptionAction, SubscriptionStatus
from paygrid.ids import new_id, new_ordered_id
from paygrid.schemas.subscriptions import (
    DEFAULT_DAYS_UNTIL_DUE,
    MAX_TRIAL_DAYS,
    Subscription,
    SubscriptionCreate,
)
from paygrid.services.billing import invoices
from paygrid.services.billing.clocks import deps_for_customer
from paygrid.services.billing.settings import load_settings
from paygrid.services.billing.subscriptions import invoicing
from paygrid.services.billing.subscriptions.items import (
    billable_prices,
    check_payment_method,
    recurrence_of,
)
from paygrid.services.billing.subscriptions.views import emit, load, view_of
from paygrid.services.context import Tenant
from paygrid.services.payment_methods import require_customer

ALL_STATUSES = frozenset(SubscriptionStatus)


async def create_subscription(
    deps: Deps, tenant: Tenant, params: SubscriptionCreate
) -> Subscription:
    """Create the subscription: ``trialing`` with a trial (nothing charged); otherwise its
    first invoice is made, finalized and, for ``charge_automatically``, charged unless
    ``payment_behavior`` is ``default_incomplete``: paid → ``active``, else ``incomplete``
    (``error_if_incomplete``: ``incomplete_expired`` and the card error is the answer)."""
    deps = await deps_for_customer(deps, params.customer)
    await require_customer(deps.pool, tenant, params.customer)
    await check_payment_method(deps.pool, tenant, params.default_payment_method, params.customer)
    prices = await billable_prices(deps.pool, tenant, [i.price for i in params.items])
    now = deps.clock.now()
    days_default = (await load_settings(deps, tenant)).invoices.days_until_due
    row = _subscription(tenant, params, prices[0], now, days_default)
    # Ordered ids: the items share ``now``, and their ids keep them in the order given.
    items = [
        SubscriptionItemRow(new_ordered_id("si"), row.id, p.id, i.quantity, i.metadata, now)
        for i, p in zip(params.items, prices, strict=True)
    ]

    async def work(conn: Connection) -> tuple[SubscriptionRow, str | None]:
        sub = await subs_db.insert_subscription(conn, row)
        await subs_db.insert_items(conn, items)
        invoice_id = None
        if sub.status is not SubscriptionStatus.TRIALING:
            invoice_id = await _first_invoice(conn, sub, items, prices, params, now)
            changed = await subs_db.transition(
                conn, sub.id, ALL_STATUSES, None, now, {"latest_invoice_id": invoice_id}
            )
            assert changed is not None
            sub = changed
        await emit(conn, sub, EventType.CUSTOMER_SUBSCRIPTION_CREATED)
        return sub, invoice_id

    sub, invoice_id = await transactions.run(deps.pool, work)
    if invoice_id is not None:
        await _collect_first(deps, sub, invoice_id, params)
    return await view_of(deps.pool, await load(deps.pool, tenant, sub.id))


async def _first_invoice(
    conn: Connection,
    sub: SubscriptionRow,
    items: list[SubscriptionItemRow],
    prices: list[PriceRow],
    params: SubscriptionCreate,
    now: datetime,
) -> str:
    cycle = Cycle(sub.billing_cycle_anchor, sub.interval, sub.interval_count)
    full = Period(boundary(cycle, period_index(cycle, now)), sub.current_period_end)
    prorated = params.proration_behavior != "none" and full.start < now
    period = Period(now, sub.current_period_end)
    draft = invoicing.draft(sub, BillingReason.SUBSCRIPTION_CREATE, period, now)
    if params.payment_behavior == "default_incomplete":
        draft = replace(draft, auto_advance=False)  # awaits the customer's payment
    by_id = {p.id: p for p in prices}
    lines = invoicing.period_lines(
        draft.id, sub, items, by_id, full if prorated else period, now if prorated else None
    )
    invoice = await invoicing.make_invoice(conn, sub, draft, lines, now)
    assert invoice is not None
    return invoice.id


async def _collect_first(
    deps: Deps, sub: SubscriptionRow, invoice_id: str, params: SubscriptionCreate
) -> None:
    try:
        await invoicing.collect(deps, sub, invoice_id)
    except PaygridError:
        if params.payment_behavior != "error_if_incomplete":
            return  # allow_incomplete: the subscription stays incomplete, its invoice open
        await _expire(deps, sub, invoice_id)
        raise


async def _expire(deps: Deps, sub: SubscriptionRow, invoice_id: str) -> None:
    """``error_if_incomplete``: the subscription ends at once and its invoice is voided."""
    await invoices.void_invoice(deps, invoicing.tenant_of(sub), invoice_id)
    action = SubscriptionAction.EXPIRE_INCOMPLETE
    async with deps.pool.acquire() as conn, conn.transaction():
        now = deps.clock.now()
        moved = await subs_db.transition(
            conn,
            sub.id,
            domain.allowed_sources(action),
            domain.TRANSITIONS[action].target,
            now,
            {"ended_at": now},
        )
        if moved is not None:
            await emit(conn, moved, EventType.CUSTOMER_SUBSCRIPTION_UPDATED)


def _subscription(
    tenant: Tenant,
    params: SubscriptionCreate,
    price: PriceRow,
    now: datetime,
    days_default: int = DEFAULT_DAYS_UNTIL_DUE,
) -> SubscriptionRow:
    recurrence = recurrence_of(price)
    trial_end = _trial_end(params, now)
    method = CollectionMethod(params.collection_method)
    anchor = trial_end or _anchor(params, now, recurrence.interval, recurrence.interval_count)
    cycle = Cycle(anchor, recurrence.interval, recurrence.interval_count)
    period_end = anchor if anchor > now else boundary(cycle, 1)
    if trial_end is not None:
        status = SubscriptionStatus.TRIALING
    elif method is CollectionMethod.SEND_INVOICE:
        status = SubscriptionStatus.ACTIVE  # invoiced; paid when the customer pays
    else:
        status = SubscriptionStatus.INCOMPLETE  # until its first invoice is paid
    days = params.days_until_due
    if method is CollectionMethod.SEND_INVOICE and days is None:
        days = days_default  # the billing settings' invoices.days_until_due
    return SubscriptionRow(
        id=new_id("sub"),
        merchant_id=tenant.merchant_id,
        livemode=tenant.livemode,
        customer_id=params.customer,
        status=status,
        currency=recurrence.currency,
        interval=recurrence.interval,
        interval_count=recurrence.interval_count,
        billing_cycle_anchor=anchor,
        current_period_start=now,
        current_period_end=period_end,
        trial_start=None if trial_end is None else now,
        trial_end=trial_end,
        trial_will_end_sent=trial_end is not None and domain.trial_will_end_at(trial_end) <= now,
        upcoming_sent_for=None,
        cancel_at_period_end=params.cancel_at_period_end,
        canceled_at=None,
        ended_at=None,
        paused_at=None,
        resumes_at=None,
        collection_method=method,
        days_until_due=days,
        default_payment_method_id=params.default_payment_method,
        latest_invoice_id=None,
        metadata=params.metadata,
        created_at=now,
        updated_at=now,
    )


def _trial_end(params: SubscriptionCreate, now: datetime) -> datetime | None:
    if params.trial_period_days is not None:
        return now + timedelta(days=params.trial_period_days)
    if params.trial_end is None:
        return None
    end = datetime.fromtimestamp(params.trial_end, now.tzinfo)
    if not now < end <= now + timedelta(days=MAX_TRIAL_DAYS):
        raise InvalidRequest(
            f"trial_end must be after now and at most {MAX_TRIAL_DAYS} days ahead.",
            param="trial_end",
        )
    return end


def _anchor(
    params: SubscriptionCreate, now: datetime, interval: RecurringInterval, count: int
) -> datetime:
    if params.billing_cycle_anchor is None:
        return now
    anchor = datetime.fromtimestamp(params.billing_cycle_anchor, now.tzinfo)
    cycle = Cycle(anchor, interval, count)
    if not (anchor > now and period_index(cycle, now) == -1):
        raise InvalidRequest(
            "billing_cycle_anchor must be after now and at most one interval ahead.",
            param="billing_cycle_anchor",
        )
    return anchor
