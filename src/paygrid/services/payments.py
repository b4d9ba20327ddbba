"""Create, confirm, read and list payments."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from paygrid.connectors.base import Connector
from paygrid.db import payments as payments_db
from paygrid.db.pagination import PageRequest
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
from paygrid.schemas.payment_methods import CardInput, PaymentMethodData
from paygrid.schemas.payments import Payment, PaymentConfirm, PaymentCreate
from paygrid.services import payment_methods
from paygrid.services.authorization import run_authorization
from paygrid.services.context import Deps, Tenant
from paygrid.services.snapshots import emit_payment, payment_view


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
    return await run_authorization(deps, payment, attempt, method)


class _AlreadyCreated(Exception):
    """A payment with this idempotency key exists: the request is a resumed one."""


async def _insert(
    deps: Deps,
    tenant: Tenant,
    values: dict[str, object],
    resolved: payment_methods.ResolvedMethod,
    connector: Connector | None,
) -> tuple[asyncpg.Record, asyncpg.Record | None, asyncpg.Record | None, Payment]:
    """Write the payment, its first attempt and ``payment.created`` in one transaction."""
    async with deps.pool.acquire() as conn, conn.transaction():
        method = await payment_methods.materialize(conn, deps, tenant, resolved)
        values["payment_method_id"] = method["id"] if method else None
        try:
            payment = await payments_db.insert_payment(conn, values)
        except asyncpg.UniqueViolationError as error:
            raise DuplicateReference(
                f"A payment with reference '{values['reference']}' already exists.",
                param="reference",
            ) from error
        if payment is None:  # rolls back the method stored above
            raise _AlreadyCreated
        attempt = None
        if connector is not None:
            attempt = await payments_db.insert_attempt(
                conn,
                attempt_id=new_id("att"),
                payment_id=payment["id"],
                operation="authorize",
                connector=connector.name,
                amount=payment["amount"],
                payment_method_id=payment["payment_method_id"],
            )
        attempts = [attempt] if attempt is not None else []
        view = await emit_payment(conn, payment, EventType.PAYMENT_CREATED, attempts)
    return payment, attempt, method, view


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
    by_payment: dict[str, list[asyncpg.Record]] = {}
    for attempt in attempts:
        by_payment.setdefault(attempt["payment_id"], []).append(attempt)
    return [Payment.from_row(r, by_payment.get(r["id"], [])) for r in rows], has_more


def _card_of(data: PaymentMethodData | None) -> CardInput | None:
    return data.card if data is not None else None


async def _get(deps: Deps, tenant: Tenant, payment_id: str) -> asyncpg.Record:
    row = await payments_db.get_payment(deps.pool, tenant.merchant_id, tenant.livemode, payment_id)
    if row is None:
        raise ResourceMissing(f"No such payment: '{payment_id}'", param="id")
    return row
