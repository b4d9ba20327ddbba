"""Create a payment and, with ``confirm``, authorize it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import asyncpg

from paygrid.db import events as events_db
from paygrid.db import payment_methods as pm_db
from paygrid.db import payments as payments_db
from paygrid.db.engine import JsonText
from paygrid.db.payments import AttemptRow, PaymentRow
from paygrid.dependencies import Deps
from paygrid.domain import payments as domain
from paygrid.domain.errors import InvalidRequest, PaygridError
from paygrid.domain.events import EventType
from paygrid.domain.payments import (
    AttemptOperation,
    AttemptStatus,
    CaptureMethod,
    PaymentAction,
    PaymentStatus,
)
from paygrid.domain.url_safety import check_redirect_url
from paygrid.ids import new_id
from paygrid.money import get_currency, validate_amount
from paygrid.schemas.payments import Payment, PaymentConfirm, PaymentCreate
from paygrid.services import payment_method_ownership, payment_methods
from paygrid.services.context import Tenant
from paygrid.services.idempotency_keys import IdempotencyClaim
from paygrid.services.payment_method_sources import MethodSource, source_of
from paygrid.services.payments.authorize import authorize
from paygrid.services.payments.begin import Begun, attempts_at
from paygrid.services.payments.choice import Choice
from paygrid.services.payments.confirm import confirm_payment
from paygrid.services.payments.future_usage import require_saved
from paygrid.services.payments.plan import plan_for
from paygrid.services.payments.views import view_of


class DuplicateReference(PaygridError):
    """A payment with this reference already exists."""

    status_code = 409
    error_type = "invalid_request_error"
    default_code = "reference_already_exists"


class _AlreadyCreated(Exception):
    """A payment with this idempotency key exists: the request is a resumed one."""


@dataclass(frozen=True, slots=True)
class _Created:
    view: Payment  # as ``payment.created`` shows it
    begun: Begun | None  # its first attempt, with ``confirm``
    earlier: list[AttemptRow]  # the accounts skipped before it


async def create_payment(
    deps: Deps,
    tenant: Tenant,
    params: PaymentCreate,
    idempotency_key: str | None,
    claim: IdempotencyClaim | None = None,
) -> Payment:
    """Create a payment and, with ``confirm``, authorize it at the connector account routing
    picks (failing over to the next one only when an account provably was not reached).

    With ``claim`` (the request's idempotency key, left to this use case by the middleware)
    the key is claimed by the statement that writes the payment and the response stored by
    the one that records its outcome: two round trips and two commits fewer. A key already
    in the table raises ``IdempotencyClaimTaken`` before anything is written. (Raw card data
    is tokenized before that statement, so a replayed request may tokenize again at a
    remote provider; nothing is charged, and the simulator's tokens cost nothing.)"""
    validate_amount(params.amount, get_currency(params.currency))
    if params.return_url is not None:
        check_redirect_url(params.return_url, livemode=tenant.livemode, param="return_url")
    receipt_email = params.receipt_email
    if params.customer is not None:
        customer = await payment_methods.require_customer(deps.pool, tenant, params.customer)
        receipt_email = receipt_email or customer.email
    source = await source_of(
        deps,
        tenant,
        params.payment_method,
        params.payment_method_data,
        customer_id=params.customer,
        idempotency_key=idempotency_key,
    )
    _require_confirmable(params, source)
    if params.off_session:
        require_saved(source, params.payment_method)
    payment = _new_payment(deps, tenant, params, receipt_email, idempotency_key, source)
    choice = plan = None
    if params.confirm or source is not None:  # raw card data is tokenized where it will go
        choice, plan = await (await plan_for(deps, tenant, payment, source)).next(deps)
    try:
        created = await _insert(deps, tenant, payment, choice, confirm=params.confirm, claim=claim)
    except _AlreadyCreated:
        assert idempotency_key is not None
        return await _resume(deps, tenant, idempotency_key, params)
    if created.begun is None:
        return created.view
    return await authorize(deps, created.begun, plan, earlier=created.earlier, claim=claim)


def _require_confirmable(params: PaymentCreate, source: MethodSource) -> None:
    if params.confirm and source is None and params.payment_method_types is None:
        raise InvalidRequest(
            "A payment method is required to confirm: pass payment_method or "
            "payment_method_data, or payment_method_types for the provider's hosted page.",
            param="payment_method",
            code="parameter_missing",
        )


def _new_payment(
    deps: Deps,
    tenant: Tenant,
    params: PaymentCreate,
    receipt_email: str | None,
    idempotency_key: str | None,
    source: MethodSource,
) -> PaymentRow:
    """The payment as it is written: nothing captured, received or refunded yet."""
    # Ready to confirm: it has a payment method, or is meant for a provider's hosted page.
    ready = source is not None or params.payment_method_types is not None
    status = PaymentStatus.REQUIRES_CONFIRMATION if ready else PaymentStatus.REQUIRES_PAYMENT_METHOD
    if params.confirm:
        status = domain.apply(PaymentStatus.REQUIRES_CONFIRMATION, PaymentAction.BEGIN_ATTEMPT)
    now = deps.clock.now()
    return PaymentRow(
        id=new_id("pay"),
        merchant_id=tenant.merchant_id,
        livemode=tenant.livemode,
        status=status,
        amount=params.amount,
        currency=get_currency(params.currency).code,
        capture_method=CaptureMethod(params.capture_method),
        amount_capturable=0,
        amount_received=0,
        amount_refunded=0,
        customer_id=params.customer,
        payment_method_id=None,
        connector=None,
        connector_account_id=None,
        description=params.description,
        return_url=params.return_url,
        order_id=params.order_id,
        reference=params.reference or new_id("ref"),
        metadata=params.metadata,
        last_payment_error=None,
        next_action=None,
        cancellation_reason=None,
        canceled_at=None,
        idempotency_key=idempotency_key,
        receipt_email=receipt_email,
        payment_method_types=list[str](params.payment_method_types or ["card"]),
        created_at=now,
        updated_at=now,
        setup_future_usage=params.setup_future_usage,
        off_session=params.off_session,
        mandate_data=None if params.mandate_data is None else params.mandate_data.model_dump(),
    )


async def _insert(
    deps: Deps,
    tenant: Tenant,
    payment: PaymentRow,
    choice: Choice | None,
    *,
    confirm: bool,
    claim: IdempotencyClaim | None = None,
) -> _Created:
    """Write the payment, its new payment method, its attempts and ``payment.created`` in
    one statement. The rows (and the event's snapshot) are built here, so nothing has to be
    read back."""
    method = choice.method if choice else None
    if method is not None:
        payment = replace(payment, payment_method_id=method.id)
    skipped: list[AttemptRow] = []
    attempt = None
    if choice is not None and confirm:
        target = choice.target
        payment = replace(
            payment, connector=target.provider, connector_account_id=target.account_id
        )
        skipped, attempt = attempts_at(payment, choice, payment.created_at)
    view = Payment.from_row(payment, [*skipped, *([attempt] if attempt else [])])
    use = None
    if choice is not None and method is not None and choice.new_method is None:
        use = payment_method_ownership.use_of(
            method, payment_id=payment.id, customer_id=payment.customer_id
        )
    created = await _write(deps, payment, choice, attempt, skipped, view, use, claim)
    if not created:
        raise _AlreadyCreated
    begun = Begun(payment, attempt, method) if attempt is not None else None
    return _Created(view, begun, skipped)


async def _write(
    deps: Deps,
    payment: PaymentRow,
    choice: Choice | None,
    attempt: AttemptRow | None,
    skipped: list[AttemptRow],
    view: Payment,
    use: pm_db.Use | None,
    claim: IdempotencyClaim | None,
) -> bool:
    """One statement; True when it created the payment. Without an attempt to make, the
    view is the answer, stored for ``claim`` in the same statement."""
    body = view.model_dump_json()
    # Stored with the claim itself, so only when nothing can still refuse the payment: no
    # attempt to make and no saved method to win (the statement writes all or nothing).
    answered_here = claim is not None and not claim.held and attempt is None and use is None
    response = body.encode() if answered_here else None
    try:
        created, usable = await payments_db.create_with_attempt(
            deps.pool,
            payment=payment,
            method=choice.new_method if choice else None,
            attempt=attempt,
            event=_created_event(payment, body),
            skipped_attempts=skipped,
            method_use=use,
            claim=claim.request if claim is not None and not claim.held else None,
            response=response,
        )
    except asyncpg.UniqueViolationError as error:
        if "reference" not in (error.constraint_name or ""):
            raise
        raise DuplicateReference(
            f"A payment with reference '{payment.reference}' already exists.",
            param="reference",
        ) from error
    if claim is not None:
        claim.claimed = True  # (a key in the table raised before this)
        if created and response is not None:
            claim.completed_body = response
    if not usable:
        assert use is not None
        await _refuse_lost_race(deps, payment, use)
    return created


def _created_event(payment: PaymentRow, body: str) -> dict[str, Any]:
    """``payment.created``, its snapshot the view already serialised (``body``)."""
    return events_db.event_row(
        merchant_id=payment.merchant_id,
        livemode=payment.livemode,
        event_type=EventType.PAYMENT_CREATED.value,
        object_id=payment.id,
        snapshot=JsonText(body),
        created_at=payment.created_at,
    )


async def _refuse_lost_race(deps: Deps, payment: PaymentRow, use: pm_db.Use) -> None:
    """The insert found the saved method no longer usable: the same idempotency key created
    the payment meanwhile (resume it), the customer was deleted, or the method was taken."""
    tenant = Tenant(payment.merchant_id, payment.livemode)
    key = payment.idempotency_key
    if key is not None and await payments_db.get_by_idempotency_key(
        deps.pool, tenant.merchant_id, tenant.livemode, key
    ):
        raise _AlreadyCreated
    if use.customer_id is not None:
        await payment_methods.require_customer(deps.pool, tenant, use.customer_id)
    await payment_method_ownership.refuse_lost_race(deps.pool, tenant, use, idempotency_key=key)


async def _resume(
    deps: Deps, tenant: Tenant, idempotency_key: str, params: PaymentCreate
) -> Payment:
    """Finish a create whose first run died after committing the payment: re-drive its open
    attempt with the same attempt id (the provider deduplicates), or confirm it if the first
    run never got that far."""
    payment = await payments_db.get_by_idempotency_key(
        deps.pool, tenant.merchant_id, tenant.livemode, idempotency_key
    )
    assert payment is not None
    if payment.status is PaymentStatus.PROCESSING:
        attempt = await payments_db.open_attempt(deps.pool, payment.id, AttemptOperation.AUTHORIZE)
        if attempt is not None and attempt.status is AttemptStatus.PENDING:
            return await authorize(deps, Begun(payment, attempt), None)
    if payment.status is PaymentStatus.REQUIRES_CONFIRMATION and params.confirm:
        return await confirm_payment(deps, tenant, payment.id, PaymentConfirm())
    return await view_of(deps.pool, payment)
