"""Saved methods on the payment path: an off-session charge pays only with a method saved
to its customer, and a payment made with ``setup_future_usage`` saves its method (with the
customer's mandate) once it succeeds. See docs/billing.md."""

from __future__ import annotations

from typing import Final

import structlog

from paygrid.db.payments import PaymentRow
from paygrid.dependencies import Deps
from paygrid.domain.errors import CardError, InvalidRequest, PaymentMethodNotOwned
from paygrid.domain.payments import PaymentStatus
from paygrid.schemas.payments import Payment
from paygrid.services import saved_methods
from paygrid.services.payment_method_sources import MethodSource, SavedMethod
from paygrid.services.payments.views import tenant_of

log = structlog.get_logger(__name__)
# Where a payment's method has been authenticated and the money is held or moved.
_SAVED_STATUSES: Final = frozenset({PaymentStatus.SUCCEEDED, PaymentStatus.REQUIRES_CAPTURE})


def require_saved(source: MethodSource, payment_method: str | None) -> None:
    """Refuse an off-session charge of anything but a method attached to the payment's
    customer (the ownership rule has checked whose it is): never raw card data, a test
    magic id or an unattached method, which no customer agreed to be charged later."""
    if isinstance(source, SavedMethod) and source.row.attached:
        return
    raise PaymentMethodNotOwned(
        f"The payment method '{payment_method}' is not saved to the customer; an "
        "off-session charge needs a method attached to `customer` (saved with "
        "setup_future_usage, a setup intent, or attach).",
        param="payment_method",
    )


async def save_if_asked(deps: Deps, payment: PaymentRow, view: Payment) -> None:
    """With ``setup_future_usage``: once the payment succeeded (or is authorized), attach
    its method to the customer and record the mandate. Nothing is saved otherwise, or when
    the provider's authorization cannot be reused (no method to save)."""
    if payment.setup_future_usage is None or payment.customer_id is None:
        return
    if view.status not in _SAVED_STATUSES or view.payment_method is None:
        return
    try:
        await saved_methods.save_for_future(
            deps,
            tenant_of(payment),
            method_id=view.payment_method,
            customer_id=payment.customer_id,
            source_id=payment.id,
            mandate_data=payment.mandate_data,
        )
    except (InvalidRequest, CardError) as error:
        # The payment stands; only the saving failed (the customer was deleted meanwhile,
        # or the provider refused to keep the card).
        log.warning("payment.method_not_saved", payment_id=payment.id, code=error.code)
