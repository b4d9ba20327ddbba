"""The payment core: one module per operation.

The flow of a payment: ``plan`` asks routing once for the payment's ordered targets and
``choice`` picks the next one that can take it; ``begin`` moves the payment to
``processing`` and writes the pending attempt; ``authorize`` walks the plan in a loop
(failing over only when a call provably never reached its provider); ``outcomes`` records
each answer with its transition and event in one statement. Every attempt row is built by
``attempts.new_attempt``. ``sync`` (redirect returns, status sync) and ``late_charges`` use
the same plan, builder and recorder. ``create``, ``confirm``, ``capture``, ``cancel`` and
``queries`` are the use cases; ``operations`` makes and records capture, void and refund
calls; ``locks`` loads a merchant's payment; ``views`` builds the public shape.
"""

from __future__ import annotations

from paygrid.services.payments.cancel import cancel_payment
from paygrid.services.payments.capture import capture_payment
from paygrid.services.payments.confirm import confirm_payment
from paygrid.services.payments.create import DuplicateReference, create_payment
from paygrid.services.payments.queries import get_payment, list_payments
from paygrid.services.payments.sync import sync_authorization

__all__ = [
    "DuplicateReference",
    "cancel_payment",
    "capture_payment",
    "confirm_payment",
    "create_payment",
    "get_payment",
    "list_payments",
    "sync_authorization",
]
