"""Create, confirm, read and list payments."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg

from paygrid.connectors.base import Connector, TokenizedCard
from paygrid.db import events as events_db
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
from paygrid.ids import new_id
from paygrid.money import get_currency, validate_amount
from paygrid.schemas.common import RowLike
from paygrid.schemas.payment_methods import CardInput, PaymentMethodData
from paygrid.schemas.payments import Payment, PaymentConfirm, PaymentCreate
from paygrid.services import payment_methods
from paygrid.services.authorization import run_authorization
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
    """Create a payment and, with ``confirm``, authorize it at the tenant's connector."""
    currency = get_currency(params.currency)
    validate_amount(params.amount, currency)
    if params.customer is not None:
        await payment_methods.require_customer(deps.pool, tenant, params.customer)
    connector = deps.connectors.for_mode(tenant.livemode) if params.confirm else None
    resolved = await payment_methods.resolve(
        deps,
        tenant,
        params.payment_method,
        _card_of(params.payment_method_data),
    )
    if params.confirm and resolved is None:
        raise InvalidRequest(
            "A payment method is required to confirm: pass payment_method or payment_method_data.",
            param="payment_method",
            code="parameter_missing",
        )
    status = (
        PaymentStatus.REQUIRES_PAYMENT_METHOD
        if resolved is None
        else PaymentStatus.REQUIRES_CONFIRMATION
    )
    if connector is not None:
        status = domain.apply(status, PaymentAction.BEGIN_ATTEMPT)
    values: dict[str, object] = {
        "id": new_id("pay"),
        "merchant_id": tenant.merchant_id,
        "livemode": tenant.livemode,
        "status": status.value,
        "amount": params.amount,
        "currency": currency.code,
        "capture_method": params.capture_method,
        "customer_id": params.customer,
        "connector": connector.name if connector else None,
        "description": params.description,
        "return_url": params.return_url,
        "order_id": params.order_id,
        "reference": params.reference or new_id("ref"),
        "metadata": params.metadata,
        "idempotency_key": idempotency_key,
    }
    try:
        payment, attempt, method, view = await _insert(deps, tenant, values, resolved, connector)
    except _AlreadyCreated:
        assert idempotency_key is not None
        existing = await payments_db.get_by_idempotency_key(
            deps.pool, tenant.merchant_id, tenant.livemode, idempotency_key
        )
        assert existing is not None
        return await _resume(deps, tenant, existing, params)
    if attempt is None:
        return view
    return await run_authorization(deps, payment, attempt, method, earlier_attempts=[])


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
    resolved: payment_methods.ResolvedMethod,
    connector: Connector | None,
) -> tuple[dict[str, Any], dict[str, Any] | None, RowLike | None, Payment]:
    """Write the payment, its new payment method, its first attempt and ``payment.created``
    in one statement. The rows (and the event's snapshot) are built here, so nothing has to
    be read back."""
    now = datetime.now(UTC)
    new_method = None
    method: RowLike | None = None
    if isinstance(resolved, TokenizedCard):
        new_method = payment_methods.new_method_row(
            tenant, resolved, deps.connectors.simulator.name, now
        )
        method = new_method
    elif resolved is not None:
        method = resolved
    payment = {
        **values,
        "payment_method_id": method["id"] if method is not None else None,
        "created_at": now,
        "updated_at": now,
    }
    attempt = None
    if connector is not None:
        attempt = new_attempt_row(payment, connector.name, now)
    view = Payment.from_row({**_NEW_PAYMENT_DEFAULTS, **payment}, [attempt] if attempt else [])
    event = events_db.event_row(
        merchant_id=tenant.merchant_id,
        livemode=tenant.livemode,
        event_type=EventType.PAYMENT_CREATED.value,
        object_id=str(payment["id"]),
        snapshot=view.model_dump(mode="json"),
        created_at=now,
    )
    try:
        created = await payments_db.create_with_attempt(
            deps.pool, payment=payment, method=new_method, attempt=attempt, event=event
        )
    except asyncpg.UniqueViolationError as error:
        if "reference" not in (error.constraint_name or ""):
            raise
        raise DuplicateReference(
            f"A payment with reference '{values['reference']}' already exists.",
            param="reference",
        ) from error
    if not created:
        raise _AlreadyCreated
    return {**_NEW_PAYMENT_DEFAULTS, **payment}, attempt, method, view


def new_attempt_row(payment: RowLike, connector: str, now: datetime) -> dict[str, Any]:
    """A pending authorize attempt, recorded before the provider is called."""
    return {
        "id": new_id("att"),
        "payment_id": payment["id"],
        "operation": "authorize",
        "connector": connector,
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
    """Attach a payment method if given, then authorize at the tenant's connector."""
    payment = await _get(deps, tenant, payment_id)
    connector = deps.connectors.for_mode(tenant.livemode)
    attaching = params.payment_method is not None or params.payment_method_data is not None
    sources = domain.confirm_sources(attaching)
    if payment["status"] not in sources:
        raise domain.invalid_state(payment["status"], PaymentAction.BEGIN_ATTEMPT)
    resolved = await payment_methods.resolve(
        deps,
        tenant,
        params.payment_method,
        _card_of(params.payment_method_data),
    )
    changes: dict[str, object] = {"connector": connector.name}
    if params.return_url is not None:
        changes["return_url"] = params.return_url
    async with deps.pool.acquire() as conn, conn.transaction():
        method = await payment_methods.materialize(conn, deps, tenant, resolved)
        if method is not None:
            changes["payment_method_id"] = method["id"]
        updated = await payments_db.transition(
            conn, payment_id, sources=sources, target=PaymentStatus.PROCESSING, changes=changes
        )
        if updated is None:
            current = await payments_db.get_payment_unscoped(conn, payment_id)
            assert current is not None
            raise domain.invalid_state(current["status"], PaymentAction.BEGIN_ATTEMPT)
        attempt = await payments_db.insert_attempt(
            conn,
            attempt_id=new_id("att"),
            payment_id=payment_id,
            operation="authorize",
            connector=connector.name,
            amount=updated["amount"],
            payment_method_id=updated["payment_method_id"],
        )
    return await run_authorization(deps, updated, attempt, method)


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
    created_gte: datetime | None,
    created_lte: datetime | None,
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


def _card_of(data: PaymentMethodData | None) -> CardInput | None:
    return data.card if data is not None else None


async def _get(deps: Deps, tenant: Tenant, payment_id: str) -> asyncpg.Record:
    row = await payments_db.get_payment(deps.pool, tenant.merchant_id, tenant.livemode, payment_id)
    if row is None:
        raise ResourceMissing(f"No such payment: '{payment_id}'", param="id")
    return row
