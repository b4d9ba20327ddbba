"""The prices a subscription may bill: recurring, active, of one currency and one interval,
each at most once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from paygrid.db import payment_methods as pm_db
from paygrid.db.executor import Executor
from paygrid.db.prices import PriceRow
from paygrid.domain.catalog import PriceType, RecurringInterval
from paygrid.domain.errors import InvalidRequest, ResourceMissing
from paygrid.services.billing.prices import require_price
from paygrid.services.context import Tenant

# An archived or one-time price, one billing unlike the others, or one named twice (the
# code invoice items use for prices they cannot bill).
PRICE_NOT_USABLE = "price_not_usable"


@dataclass(frozen=True, slots=True)
class Recurrence:
    """What every price of one subscription shares."""

    currency: str
    interval: RecurringInterval
    interval_count: int


def recurrence_of(price: PriceRow) -> Recurrence:
    assert price.recurring_interval is not None and price.recurring_interval_count is not None
    return Recurrence(price.currency, price.recurring_interval, price.recurring_interval_count)


async def billable_price(
    conn: Executor, tenant: Tenant, price_id: str, param: str, fits: Recurrence | None
) -> PriceRow:
    """An active recurring price of the tenant that bills like ``fits`` (when given)."""
    try:
        price = await require_price(conn, tenant, price_id)
    except ResourceMissing as missing:
        raise InvalidRequest(missing.message, param=param, code="resource_missing") from None
    if price.type is not PriceType.RECURRING:
        raise InvalidRequest(
            f"The price '{price_id}' is not recurring; a subscription bills recurring prices.",
            param=param,
            code=PRICE_NOT_USABLE,
        )
    if not price.active:
        raise InvalidRequest(
            f"The price '{price_id}' is archived (active: false).",
            param=param,
            code=PRICE_NOT_USABLE,
        )
    if fits is not None and recurrence_of(price) != fits:
        raise InvalidRequest(
            "All prices of a subscription must have the same currency, interval and "
            "interval_count.",
            param=param,
            code=PRICE_NOT_USABLE,
        )
    return price


async def billable_prices(
    conn: Executor, tenant: Tenant, price_ids: Sequence[str], fits: Recurrence | None = None
) -> list[PriceRow]:
    """The prices of a new set of items, in order, all billing alike and none twice."""
    if len(set(price_ids)) != len(price_ids):
        raise InvalidRequest(
            "A subscription names each price at most once.", param="items", code=PRICE_NOT_USABLE
        )
    prices: list[PriceRow] = []
    for index, price_id in enumerate(price_ids):
        price = await billable_price(conn, tenant, price_id, f"items[{index}][price]", fits)
        fits = fits or recurrence_of(price)
        prices.append(price)
    return prices


async def check_payment_method(
    conn: Executor, tenant: Tenant, method: str | None, customer_id: str
) -> None:
    """A saved method must be the customer's (a method is usable only for its customer)."""
    if method is None:
        return
    saved = await pm_db.get_payment_method(conn, tenant.merchant_id, tenant.livemode, method)
    if saved is not None and saved.customer_id != customer_id:
        raise InvalidRequest(
            f"The payment method '{method}' is not attached to customer '{customer_id}'.",
            param="default_payment_method",
            code="payment_method_not_owned",
        )
