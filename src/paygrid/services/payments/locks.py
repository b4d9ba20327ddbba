"""Load a merchant's payment, locked or not, and the 409 for a refused capture or void."""

from __future__ import annotations

import contextlib

from paygrid.db import payments as payments_db
from paygrid.db.executor import Executor
from paygrid.db.payments import PaymentRow
from paygrid.dependencies import Deps
from paygrid.domain.errors import PaygridError, PaymentInvalidState, ResourceMissing
from paygrid.domain.payments import AttemptOperation, PaymentStatus
from paygrid.services.context import Tenant
from paygrid.services.payments.operations import Outcome
from paygrid.services.payments.sync import sync_authorization


async def require_payment(
    conn: Executor, tenant: Tenant, payment_id: str, *, lock: bool = False
) -> PaymentRow:
    """The tenant's payment (its row locked for the transaction with ``lock``), or 404."""
    row = await payments_db.find_payment(
        conn, tenant.merchant_id, tenant.livemode, payment_id, lock=lock
    )
    if row is None:
        raise ResourceMissing(f"No such payment: '{payment_id}'", param="id")
    return row


async def refused(
    deps: Deps,
    tenant: Tenant,
    payment_id: str,
    operation: AttemptOperation,
    outcome: Outcome,
) -> PaymentInvalidState:
    """The provider refused a capture or void (its attempt is recorded ``failed``). When
    the payment still waits on its customer, the refusal usually means the customer already
    finished at the provider (denied or approved 3-D Secure), so the authorization is synced
    first: the 409 then names the status the payment really is in, from which the documented
    next steps (confirm with another method, capture, cancel) work."""
    payment = await require_payment(deps.pool, tenant, payment_id)
    if payment.status is PaymentStatus.REQUIRES_ACTION:
        with contextlib.suppress(PaygridError):  # the 409 reaches the client regardless
            await sync_authorization(deps, payment)
        payment = await require_payment(deps.pool, tenant, payment_id)
    what = "capture" if operation is AttemptOperation.CAPTURE else "void the authorization"
    return PaymentInvalidState(
        f"The provider refused to {what} ({outcome.result.failure_reason}); "
        f"the payment has a status of {payment.status.value}.",
        current_status=payment.status.value,
    )
