"""Confirm a payment: attach a payment method if given, then authorize where routing says."""

from __future__ import annotations

from paygrid.db.payments import PaymentRow
from paygrid.dependencies import Deps
from paygrid.domain import payments as domain
from paygrid.domain.payments import PaymentAction
from paygrid.domain.url_safety import check_redirect_url
from paygrid.schemas.payments import Payment, PaymentConfirm
from paygrid.services import payment_method_ownership
from paygrid.services.context import Tenant
from paygrid.services.payment_method_sources import MethodSource, SavedMethod, source_of
from paygrid.services.payments.authorize import authorize
from paygrid.services.payments.begin import begin_attempt
from paygrid.services.payments.locks import require_payment
from paygrid.services.payments.plan import plan_for


async def confirm_payment(
    deps: Deps, tenant: Tenant, payment_id: str, params: PaymentConfirm
) -> Payment:
    """Attach a payment method if given, then authorize where routing says (failing over
    to the next account only when an account provably was not reached)."""
    if params.return_url is not None:
        check_redirect_url(params.return_url, livemode=tenant.livemode, param="return_url")
    payment = await require_payment(deps.pool, tenant, payment_id)
    attaching = params.payment_method is not None or params.payment_method_data is not None
    sources = domain.confirm_sources(attaching)
    if payment.status not in sources:
        raise domain.invalid_state(payment.status, PaymentAction.BEGIN_ATTEMPT)
    source = await _source(deps, tenant, payment, params, attaching=attaching)
    choice, rest = await (await plan_for(deps, tenant, payment, source)).next(deps)
    begun = await begin_attempt(
        deps, payment, choice, sources=sources, return_url=params.return_url
    )
    return await authorize(deps, begun, rest)


async def _source(
    deps: Deps,
    tenant: Tenant,
    payment: PaymentRow,
    params: PaymentConfirm,
    *,
    attaching: bool,
) -> MethodSource:
    """What pays: the method given with the confirm, else the one the payment holds."""
    if attaching:
        return await source_of(
            deps,
            tenant,
            params.payment_method,
            params.payment_method_data,
            customer_id=payment.customer_id,
            payment_id=payment.id,
        )
    if payment.payment_method_id is None:
        return None
    row = await payment_method_ownership.usable_method(
        deps.pool,
        tenant,
        payment.payment_method_id,
        customer_id=payment.customer_id,
        payment_id=payment.id,
    )
    assert row is not None
    return SavedMethod(row)
