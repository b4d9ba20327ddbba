"""Create, confirm, read and list payments."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from paygrid.db import events as events_db
from paygrid.db import payment_methods as pm_db
from paygrid.db import payments as payments_db
from paygrid.db.pagination import PageRequest, group_by
from paygrid.domain import payments as domain
from paygrid.domain.errors import (
    InvalidRequest,
    PaygridError,
    ResourceMissing,
)
from paygrid.domain.events import EventType
from paygrid.domain.payments import PaymentAction, PaymentStatus
from paygrid.domain.routing import RoutingContext
from paygrid.domain.url_safety import check_redirect_url
from paygrid.ids import new_id
from paygrid.money import get_currency, validate_amount
from paygrid.schemas.common import RowLike
from paygrid.schemas.payments import Payment, PaymentConfirm, PaymentCreate
from paygrid.services import payment_method_ownership, payment_methods, routing
from paygrid.services.authorization import Fallback, begin_attempt, run_authorization
from paygrid.services.context import Deps, Tenant
from paygrid.services.snapshots import payment_view


class DuplicateReference(PaygridError):
    """A payment with this reference already exists."""

    status_code = 409
    error_type = "invalid_request_error"
    default_code = "reference_already_exists"


async def create_payment(
    deps: Deps, tenant: Tenant, params: PaymentCreate, idempotency_key: str | None
) -> Payment:
    """Create a payment and, with ``confirm``, authorize it at the connector account routing
    picks (failing over to the next one only when an account provably was not reached)."""
    currency = get_currency(params.currency)
    validate_amount(params.amount, currency)
    if params.return_url is not None:
        check_redirect_url(params.return_url, livemode=tenant.livemode, param="return_url")
    receipt_email = params.receipt_email
    if params.customer is not None:
        customer = await payment_methods.require_customer(deps.pool, tenant, params.customer)
        receipt_email = receipt_email or customer["email"]
    source = await payment_methods.source_of(
        deps,
        tenant,
        params.payment_method,
        params.payment_method_data,
        customer_id=params.customer,
        idempotency_key=idempotency_key,
    )
    method_types = params.payment_method_types or ["card"]
    if params.confirm and source is None and params.payment_method_types is None:
        raise InvalidRequest(
            "A payment method is required to confirm: pass payment_method or "
            "payment_method_data, or payment_method_types for the provider's hosted page.",
            param="payment_method",
            code="parameter_missing",
        )
    payment_id = new_id("pay")
    now = deps.clock.now()
    values: dict[str, object] = {
        "id": payment_id,
        "merchant_id": tenant.merchant_id,
        "livemode": tenant.livemode,
        "amount": params.amount,
        "currency": currency.code,
        "capture_method": params.capture_method,
        "customer_id": params.customer,
        "description": params.description,
        "return_url": params.return_url,
        "order_id": params.order_id,
        "reference": params.reference or new_id("ref"),
        "metadata": params.metadata,
        "idempotency_key": idempotency_key,
        "receipt_email": receipt_email,
        "payment_method_types": method_types,
    }
    choice = None
    if params.confirm or source is not None:
        targets = await routing.targets_for(
            deps.pool,
            tenant,
            _routing_context(values, source, method_types),
            deps.connectors.providers,
        )
        choice = await routing.choose(
            deps,
            tenant,
            targets,
            source,
            manual_capture=params.capture_method == "manual",
            customer_id=None,
            now=now,
            email=receipt_email,
        )
        remaining = targets[targets.index(choice.target) + 1 :]
    # Ready to confirm: it has a payment method, or is meant for a provider's hosted page.
    ready = source is not None or params.payment_method_types is not None
    status = PaymentStatus.REQUIRES_CONFIRMATION if ready else PaymentStatus.REQUIRES_PAYMENT_METHOD
    if params.confirm:
        status = domain.apply(PaymentStatus.REQUIRES_CONFIRMATION, PaymentAction.BEGIN_ATTEMPT)
    values["status"] = status.value
    values["connector"] = choice.target.provider if choice and params.confirm else None
    values["connector_account_id"] = choice.target.account_id if choice and params.confirm else None
    try:
        payment, attempt, method, view, earlier = await _insert(
            deps, tenant, values, choice, confirm=params.confirm, now=now
        )
    except _AlreadyCreated:
        assert idempotency_key is not None
        existing = await payments_db.get_by_idempotency_key(
            deps.pool, tenant.merchant_id, tenant.livemode, idempotency_key
        )
        assert existing is not None
        return await _resume(deps, tenant, existing, params)
    if attempt is None:
        return view
    fallback = Fallback(remaining, source)
    return await run_authorization(
        deps, payment, attempt, method, earlier_attempts=earlier, fallback=fallback
    )


def _routing_context(
    values: dict[str, object],
    source: payment_methods.MethodSource,
    method_types: Sequence[str],
) -> RoutingContext:
    country = None
    if isinstance(source, payment_methods.SavedMethod):
        country = source.row["card_country"]
    metadata = values["metadata"]
    assert isinstance(metadata, dict)
    amount = values["amount"]
    assert isinstance(amount, int)
    return RoutingContext(
        payment_id=str(values["id"]),
        currency=str(values["currency"]),
        amount=amount,
        payment_method_type="card" if source is not None else method_types[0],
        card_country=country,
        metadata=metadata,
    )


class _AlreadyCreated(Exception):
    """A payment with this idempotency key exists: the request is a resumed one."""


# Columns the database fills by default on a new payment, as the schemas read them.
_NEW_PAYMENT_DEFAULTS: dict[str, object] = {
    "amount_capturable": 0,
    "amount_received": 0,
    "amount_refunded": 0,
    "last_payment_error": None,
    "next_action": None,
    "cancellation_reason": None,
    "canceled_at": None,
}


async def _insert(
    deps: Deps,
    tenant: Tenant,
    values: dict[str, object],
    choice: routing.Choice | None,
    *,
    confirm: bool,
    now: datetime,
) -> tuple[dict[str, Any], dict[str, Any] | None, RowLike | None, Payment, list[RowLike]]:
    """Write the payment, its new payment method, its attempts and ``payment.created`` in
    one statement. The rows (and the event's snapshot) are built here, so nothing has to be
    read back."""
    method = choice.method if choice else None
    payment = {
        **values,
        "payment_method_id": method["id"] if method is not None else None,
        "created_at": now,
        "updated_at": now,
    }
    skipped: list[dict[str, Any]] = []
    attempt = None
    if choice is not None and confirm:
        skipped = [
            routing.skipped_attempt_row(str(payment["id"]), target, int(str(values["amount"])), now)
            for target in choice.skipped
        ]
        attempt = new_attempt_row(payment, choice.target, now)
    attempts: list[RowLike] = [*skipped, *([attempt] if attempt else [])]
    view = Payment.from_row(
        {**_NEW_PAYMENT_DEFAULTS, **payment}, [_attempt_defaults(a) for a in attempts]
    )
    event = events_db.event_row(
        merchant_id=tenant.merchant_id,
        livemode=tenant.livemode,
        event_type=EventType.PAYMENT_CREATED.value,
        object_id=str(payment["id"]),
        snapshot=view.model_dump(mode="json"),
        created_at=now,
    )
    use = None
    if choice is not None and method is not None and choice.new_method is None:
        customer_id = payment["customer_id"]
        assert customer_id is None or isinstance(customer_id, str)
        use = payment_method_ownership.use_of(
            method, payment_id=str(payment["id"]), customer_id=customer_id
        )
    try:
        created, usable = await payments_db.create_with_attempt(
            deps.pool,
            payment=payment,
            method=choice.new_method if choice else None,
            attempt=attempt,
            event=event,
            skipped_attempts=skipped,
            method_use=use,
        )
    except asyncpg.UniqueViolationError as error:
        if "reference" not in (error.constraint_name or ""):
            raise
        raise DuplicateReference(
            f"A payment with reference '{values['reference']}' already exists.",
            param="reference",
        ) from error
    if not usable:
        assert use is not None
        await _refuse_lost_race(deps, tenant, use, values)
    if not created:
        raise _AlreadyCreated
    earlier: list[RowLike] = [_attempt_defaults(row) for row in skipped]
    return {**_NEW_PAYMENT_DEFAULTS, **payment}, attempt, method, view, earlier


async def _refuse_lost_race(
    deps: Deps, tenant: Tenant, use: pm_db.Use, values: dict[str, object]
) -> None:
    """The insert found the saved method no longer usable: the same idempotency key created
    the payment meanwhile (resume it), the customer was deleted, or the method was taken."""
    key = values["idempotency_key"]
    assert key is None or isinstance(key, str)
    if key is not None and await payments_db.get_by_idempotency_key(
        deps.pool, tenant.merchant_id, tenant.livemode, key
    ):
        raise _AlreadyCreated
    if use.customer_id is not None:
        await payment_methods.require_customer(deps.pool, tenant, use.customer_id)
    await payment_method_ownership.refuse_lost_race(deps.pool, tenant, use, idempotency_key=key)


_ATTEMPT_DEFAULTS: dict[str, Any] = {
    "provider_reference": None,
    "error_code": None,
    "decline_code": None,
    "error_message": None,
    "latency_ms": None,
    "completed_at": None,
    "payment_method_id": None,
    "sync_count": 0,
    "next_sync_at": None,
    "refund_id": None,
}


def _attempt_defaults(row: RowLike) -> dict[str, Any]:
    return {**_ATTEMPT_DEFAULTS, **dict(row.items())}


def new_attempt_row(payment: RowLike, target: routing.Target, now: datetime) -> dict[str, Any]:
    """A pending authorize attempt, recorded before the provider is called."""
    return {
        "id": new_id("att"),
        "payment_id": payment["id"],
        "operation": "authorize",
        "connector": target.provider,
        "connector_account_id": target.account_id,
        "status": "pending",
        "amount": payment["amount"],
        "payment_method_id": payment["payment_method_id"],
        "created_at": now,
        "provider_reference": None,
        "error_code": None,
        "decline_code": None,
        "error_message": None,
        "latency_ms": None,
        "completed_at": None,
    }


async def _resume(
    deps: Deps, tenant: Tenant, payment: asyncpg.Record, params: PaymentCreate
) -> Payment:
    """Finish a create whose first run died after committing the payment: re-drive its open
    attempt with the same attempt id (the provider deduplicates), or confirm it if the first
    run never got that far."""
    if payment["status"] == PaymentStatus.PROCESSING:
        attempt = await payments_db.open_attempt(deps.pool, payment["id"], "authorize")
        if attempt is not None and attempt["status"] == "pending":
            return await run_authorization(deps, payment, attempt)
    if payment["status"] == PaymentStatus.REQUIRES_CONFIRMATION and params.confirm:
        return await confirm_payment(deps, tenant, payment["id"], PaymentConfirm())
    return await payment_view(deps.pool, payment)


async def confirm_payment(
    deps: Deps, tenant: Tenant, payment_id: str, params: PaymentConfirm
) -> Payment:
    """Attach a payment method if given, then authorize where routing says."""
    if params.return_url is not None:
        check_redirect_url(params.return_url, livemode=tenant.livemode, param="return_url")
    payment = await _get(deps, tenant, payment_id)
    attaching = params.payment_method is not None or params.payment_method_data is not None
    sources = domain.confirm_sources(attaching)
    if payment["status"] not in sources:
        raise domain.invalid_state(payment["status"], PaymentAction.BEGIN_ATTEMPT)
    if attaching:
        source = await payment_methods.source_of(
            deps,
            tenant,
            params.payment_method,
            params.payment_method_data,
            customer_id=payment["customer_id"],
            payment_id=payment["id"],
        )
    elif payment["payment_method_id"] is not None:
        row = await payment_method_ownership.usable_method(
            deps.pool,
            tenant,
            payment["payment_method_id"],
            customer_id=payment["customer_id"],
            payment_id=payment["id"],
        )
        assert row is not None
        source = payment_methods.SavedMethod(row)
    else:
        source = None
    targets = await routing.targets_for(
        deps.pool,
        tenant,
        _routing_context(dict(payment.items()), source, list(payment["payment_method_types"])),
        deps.connectors.providers,
    )
    choice = await routing.choose(
        deps,
        tenant,
        targets,
        source,
        manual_capture=payment["capture_method"] == "manual",
        customer_id=None,
        now=deps.clock.now(),
        email=payment["receipt_email"],
    )
    remaining = targets[targets.index(choice.target) + 1 :]
    updated, attempt = await begin_attempt(
        deps, payment, choice, sources=sources, return_url=params.return_url
    )
    return await run_authorization(
        deps, updated, attempt, choice.method, fallback=Fallback(remaining, source)
    )


async def get_payment(deps: Deps, tenant: Tenant, payment_id: str) -> Payment:
    return await payment_view(deps.pool, await _get(deps, tenant, payment_id))


async def list_payments(
    deps: Deps,
    tenant: Tenant,
    page: PageRequest,
    *,
    status: PaymentStatus | None,
    customer: str | None,
    currency: str | None,
    reference: str | None,
    created_gte: datetime | None = None,
    created_lte: datetime | None = None,
) -> tuple[list[Payment], bool]:
    rows, has_more = await payments_db.list_payments(
        deps.pool,
        tenant.merchant_id,
        tenant.livemode,
        page,
        status=status.value if status else None,
        customer=customer,
        currency=currency.upper() if currency else None,
        reference=reference,
        created_gte=created_gte,
        created_lte=created_lte,
    )
    attempts = await payments_db.list_attempts(deps.pool, [r["id"] for r in rows])
    by_payment = group_by(attempts, "payment_id")
    return [Payment.from_row(r, by_payment.get(r["id"], [])) for r in rows], has_more


async def _get(deps: Deps, tenant: Tenant, payment_id: str) -> asyncpg.Record:
    row = await payments_db.get_payment(deps.pool, tenant.merchant_id, tenant.livemode, payment_id)
    if row is None:
        raise ResourceMissing(f"No such payment: '{payment_id}'", param="id")
    return row
