"""What the customer may do in the billing portal, each allowed by the merchant's portal
settings, checked against the session's customer, and audited (as
``billing_portal:<session>``): make a saved card the default, and cancel a subscription at
the end of its period.

Both go through the same use cases as the API: the default is set by
``customers.update_customer`` (``invoice_settings.default_payment_method``, so whatever
follows a new default, such as retrying open invoices, follows it here too), and the
cancellation by the subscription lifecycle."""

from __future__ import annotations

from typing import Any

from paygrid.dependencies import Deps
from paygrid.domain.errors import InvalidRequest, PermissionDenied, ResourceMissing
from paygrid.schemas.customers import Customer, CustomerUpdate
from paygrid.schemas.subscriptions import SubscriptionCancel
from paygrid.services import audit, customers
from paygrid.services.billing.settings import load_settings
from paygrid.services.billing.subscriptions import lifecycle, views
from paygrid.services.billing_portal.sessions import PortalAccess


class PortalActionNotAllowed(PermissionDenied):
    """The merchant does not offer this in the billing portal."""

    default_code = "portal_action_not_allowed"


async def set_default_method(deps: Deps, access: PortalAccess, payment_method: str) -> None:
    """Make one of the customer's saved cards the one invoices charge."""
    settings = await load_settings(deps, access.tenant)
    if not settings.portal.allow_update_method:
        raise PortalActionNotAllowed("Changing the payment method is not offered here.")
    await make_default(deps, access, payment_method)


async def make_default(deps: Deps, access: PortalAccess, payment_method: str) -> None:
    """Set the default (the settings were checked by the caller); a card that is not this
    customer's is refused as unknown (and no card at all: the portal never clears it)."""
    not_yours = InvalidRequest(
        "That card is not one of yours.", param="payment_method", code="resource_missing"
    )
    if not payment_method:
        raise not_yours
    before = await _customer(deps, access)
    params = CustomerUpdate.model_validate(
        {"invoice_settings": {"default_payment_method": payment_method}}
    )
    try:
        await customers.update_customer(deps, access.tenant, access.customer_id, params)
    except InvalidRequest:
        raise not_yours from None
    await record(
        deps,
        access,
        "billing_portal.default_payment_method_set",
        ("customer", access.customer_id),
        {"default_payment_method": before.invoice_settings.default_payment_method},
        {"default_payment_method": payment_method},
    )


async def cancel_at_period_end(deps: Deps, access: PortalAccess, subscription_id: str) -> None:
    """Cancel one of the customer's subscriptions when its current period ends."""
    settings = await load_settings(deps, access.tenant)
    if not settings.portal.allow_cancel:
        raise PortalActionNotAllowed("Cancelling a subscription is not offered here.")
    try:
        sub = await views.get_subscription(deps, access.tenant, subscription_id)
    except ResourceMissing:
        sub = None
    if sub is None or sub.customer != access.customer_id:
        raise ResourceMissing(f"No such subscription: '{subscription_id}'", param="subscription")
    params = SubscriptionCancel(at_period_end=True)
    await lifecycle.cancel_subscription(deps, access.tenant, subscription_id, params)
    await record(
        deps,
        access,
        "billing_portal.subscription_cancel_scheduled",
        ("subscription", subscription_id),
        {"cancel_at_period_end": sub.cancel_at_period_end},
        {"cancel_at_period_end": True},
    )


async def _customer(deps: Deps, access: PortalAccess) -> Customer:
    found = await customers.get_customer(deps, access.tenant, access.customer_id)
    if not isinstance(found, Customer):
        raise ResourceMissing("This customer no longer exists.", param="customer")
    return found


async def record(
    deps: Deps,
    access: PortalAccess,
    action: str,
    subject: tuple[str, str],
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """The portal's own audit entry for an action it took (the changed rows' triggers
    record the rows, with the same actor)."""
    object_type, object_id = subject
    async with deps.pool.acquire() as conn, conn.transaction():
        await audit.record(
            conn,
            merchant_id=access.tenant.merchant_id,
            livemode=access.tenant.livemode,
            actor=f"billing_portal:{access.session_id}",
            action=action,
            object_type=object_type,
            object_id=object_id,
            before=before,
            after=after,
        )
