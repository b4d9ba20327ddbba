"""What the dashboard calls a payment's state, and how it names states to people.

The API keeps a refunded payment `succeeded` (as Stripe keeps a refunded PaymentIntent
`succeeded`); how much is refunded is `amount_refunded`. The dashboard shows that as two more
states, `refunded` and `partially_refunded`, so a list and its status filter answer "what
came back?" at a glance. The same rule is in SQL (``db.payment_search.SHOWN_STATE``) for the
filter and the counts.
"""

from __future__ import annotations

from paygrid.domain.payments import PaymentStatus

REFUNDED = "refunded"
PARTIALLY_REFUNDED = "partially_refunded"

# Every state a payment can be shown in, in lifecycle order (the status filter's options).
SHOWN_STATES: tuple[str, ...] = (
    *(s.value for s in PaymentStatus if s is not PaymentStatus.CANCELED),
    PARTIALLY_REFUNDED,
    REFUNDED,
    PaymentStatus.CANCELED.value,
)

# Words for the states of payments, refunds, attempts and webhook deliveries; anything not
# listed reads as its name with spaces ("not_sent" -> "Not sent").
LABELS = {
    "requires_payment_method": "Requires payment method",
    "requires_confirmation": "Requires confirmation",
    "requires_action": "Requires action",
    "requires_capture": "Requires capture",
    "processing": "Processing",
    "succeeded": "Succeeded",
    "canceled": "Canceled",
    PARTIALLY_REFUNDED: "Partially refunded",
    REFUNDED: "Refunded",
}


def shown_state(status: str, amount_received: int, amount_refunded: int) -> str:
    """The payment's state as the dashboard shows it. ``amount_refunded`` counts refunds
    still pending at the provider, so a refund shows as soon as it is made; each refund's
    own state is on the payment's page."""
    if status == PaymentStatus.SUCCEEDED and amount_refunded > 0:
        return REFUNDED if amount_refunded >= amount_received else PARTIALLY_REFUNDED
    return str(status)


def label(state: str | None) -> str:
    """``requires_capture`` -> ``Requires capture``."""
    if not state:
        return ""
    value = str(state)
    return LABELS.get(value) or value.replace("_", " ").capitalize()
