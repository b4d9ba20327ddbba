"""A customer's browser is back from a provider's page (3-D Secure, a hosted payment page):
the payment is found by its id alone (the redirect carries no API key) and its outcome is
asked of the provider and applied."""

from __future__ import annotations

from paygrid.db import payments as payments_db
from paygrid.dependencies import Deps
from paygrid.domain.errors import ResourceMissing
from paygrid.schemas.payments import Payment
from paygrid.services.payments import sync_authorization


async def payment_after_return(deps: Deps, payment_id: str) -> Payment:
    """The payment as it stands once the provider's answer for its open authorization (if
    any) has been applied."""
    payment = await payments_db.payment_by_id(deps.pool, payment_id)
    if payment is None:
        raise ResourceMissing("No such payment.")
    return await sync_authorization(deps, payment)
