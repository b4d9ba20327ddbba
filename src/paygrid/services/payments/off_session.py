"""The merchant-initiated charge of a customer's saved method, for callers inside paygrid
(billing charges invoices with it): the same use case as ``POST /v1/payments`` with
``off_session: true``, answering with the payment whatever the card said."""

from __future__ import annotations

from dataclasses import dataclass, field

from paygrid.dependencies import Deps
from paygrid.domain.errors import CardError
from paygrid.schemas.payments import Payment, PaymentCreate
from paygrid.services.context import Tenant
from paygrid.services.payments.create import create_payment
from paygrid.services.payments.views import current_view


@dataclass(frozen=True, slots=True)
class OffSessionCharge:
    """What to charge: ``amount`` (minor units) of ``currency`` to ``payment_method``,
    which must be attached to ``customer``. ``idempotency_key`` makes a repeated call (a
    retried job) return the first payment instead of charging again."""

    customer: str
    payment_method: str
    amount: int
    currency: str
    idempotency_key: str
    description: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


async def charge_off_session(deps: Deps, tenant: Tenant, charge: OffSessionCharge) -> Payment:
    """Create and confirm an off-session payment (Stripe ``off_session=true``, Paystack
    ``charge_authorization``). Returns the payment: ``succeeded``, ``requires_action``
    with ``last_payment_error.code == "authentication_required"`` (bring the customer back
    to ``next_action``), or ``requires_payment_method`` after a decline. Raises only what
    the API answers with 4xx/5xx other than a card error (an unknown or foreign method,
    a deleted customer, no provider reachable)."""
    params = PaymentCreate(
        amount=charge.amount,
        currency=charge.currency,
        confirm=True,
        off_session=True,
        customer=charge.customer,
        payment_method=charge.payment_method,
        description=charge.description,
        metadata=charge.metadata,
    )
    try:
        return await create_payment(deps, tenant, params, charge.idempotency_key)
    except CardError as error:
        payment_id = error.extra.get("payment_id")
        if not isinstance(payment_id, str):
            raise
        return await current_view(deps, payment_id)
