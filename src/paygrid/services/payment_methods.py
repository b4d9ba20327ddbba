"""Tokenize cards into payment methods, and look them up for payments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from paygrid.connectors.base import CardDetails, InvalidCard, TokenizedCard
from paygrid.db import customers as customers_db
from paygrid.db import payment_methods as pm_db
from paygrid.db.executor import Connection, Executor
from paygrid.db.pagination import PageRequest
from paygrid.domain.errors import CardError, InvalidRequest, PermissionDenied, ResourceMissing
from paygrid.ids import new_id
from paygrid.schemas.payment_methods import CardInput, PaymentMethod, PaymentMethodCreate
from paygrid.services.context import Deps, Tenant

_CARD_ERROR_CODES = {
    "number": "incorrect_number",
    "exp_month": "invalid_expiry_month",
    "exp_year": "invalid_expiry_year",
    "cvc": "invalid_cvc",
}


async def tokenize(
    deps: Deps, tenant: Tenant, card: CardInput, *, param_prefix: str
) -> TokenizedCard:
    tokenizer = deps.connectors.tokenizer(tenant.livemode)
    details = CardDetails(card.number, card.exp_month, card.exp_year, card.cvc)
    try:
        return await tokenizer.tokenize_card(details)
    except InvalidCard as error:
        raise CardError(
            str(error), param=f"{param_prefix}[{error.param}]", code=_CARD_ERROR_CODES[error.param]
        ) from None


async def store_token(
    conn: Executor,
    tenant: Tenant,
    token: TokenizedCard,
    connector: str,
    *,
    customer_id: str | None = None,
    metadata: dict[str, str] | None = None,
) -> asyncpg.Record:
    return await pm_db.insert_payment_method(
        conn,
        pm_id=new_id("pm"),
        merchant_id=tenant.merchant_id,
        livemode=tenant.livemode,
        customer_id=customer_id,
        brand=token.brand,
        last4=token.last4,
        exp_month=token.exp_month,
        exp_year=token.exp_year,
        connector=connector,
        reference=token.token,
        metadata=metadata or {},
    )


def new_method_row(
    tenant: Tenant, token: TokenizedCard, connector: str, now: datetime
) -> dict[str, Any]:
    """The row of a payment method made from a fresh token, for writing inside a larger
    statement."""
    return {
        "id": new_id("pm"),
        "merchant_id": tenant.merchant_id,
        "livemode": tenant.livemode,
        "customer_id": None,
        "type": "card",
        "card_brand": token.brand,
        "card_last4": token.last4,
        "card_exp_month": token.exp_month,
        "card_exp_year": token.exp_year,
        "connector": connector,
        "connector_reference": token.token,
        "metadata": {},
        "created_at": now,
    }


async def create_payment_method(
    deps: Deps, tenant: Tenant, params: PaymentMethodCreate, *, can_attach: bool
) -> PaymentMethod:
    """Tokenize card data (test mode) into a reusable ``pm_`` payment method."""
    if params.customer is not None:
        if not can_attach:
            raise PermissionDenied(
                "A publishable key can tokenize cards but not attach them to customers; "
                "attach with a secret key.",
                code="secret_key_required",
            )
        await require_customer(deps.pool, tenant, params.customer)
    token = await tokenize(deps, tenant, params.card, param_prefix="card")
    row = await store_token(
        deps.pool,
        tenant,
        token,
        deps.connectors.simulator.name,
        customer_id=params.customer,
        metadata=params.metadata,
    )
    return PaymentMethod.from_row(row)


ResolvedMethod = asyncpg.Record | TokenizedCard | None


async def resolve(
    deps: Deps, tenant: Tenant, payment_method: str | None, card: CardInput | None
) -> ResolvedMethod:
    """Find the payment method a payment request names, or tokenize the card it carries.

    A fresh token is returned unsaved: ``materialize`` stores it inside the caller's
    transaction, so a request that fails later leaves no payment method behind."""
    if payment_method is not None and card is not None:
        raise InvalidRequest(
            "Pass either payment_method or payment_method_data, not both.",
            param="payment_method_data",
        )
    if card is not None:
        return await tokenize(deps, tenant, card, param_prefix="payment_method_data[card]")
    if payment_method is None:
        return None
    row = await pm_db.get_payment_method(
        deps.pool, tenant.merchant_id, tenant.livemode, payment_method
    )
    if row is not None:
        return row
    if not tenant.livemode:
        magic = await deps.connectors.simulator.tokenize_magic(payment_method)
        if magic is not None:
            return magic
    raise InvalidRequest(
        f"No such payment_method: '{payment_method}'",
        param="payment_method",
        code="resource_missing",
    )


async def materialize(
    conn: Connection, deps: Deps, tenant: Tenant, resolved: ResolvedMethod
) -> asyncpg.Record | None:
    """Store a freshly tokenized card as a payment method, in ``conn``'s transaction."""
    if isinstance(resolved, TokenizedCard):
        return await store_token(conn, tenant, resolved, deps.connectors.simulator.name)
    return resolved


async def require_customer(conn: Executor, tenant: Tenant, customer_id: str) -> None:
    row = await customers_db.get_customer(conn, tenant.merchant_id, tenant.livemode, customer_id)
    if row is None or row["deleted_at"] is not None:
        raise InvalidRequest(
            f"No such customer: '{customer_id}'", param="customer", code="resource_missing"
        )


async def get_payment_method(deps: Deps, tenant: Tenant, pm_id: str) -> PaymentMethod:
    row = await pm_db.get_payment_method(deps.pool, tenant.merchant_id, tenant.livemode, pm_id)
    if row is None:
        raise ResourceMissing(f"No such payment_method: '{pm_id}'", param="id")
    return PaymentMethod.from_row(row)


async def attach(deps: Deps, tenant: Tenant, pm_id: str, customer_id: str | None) -> PaymentMethod:
    """Attach a payment method to a customer (or detach it with ``None``)."""
    await get_payment_method(deps, tenant, pm_id)
    if customer_id is not None:
        await require_customer(deps.pool, tenant, customer_id)
    return PaymentMethod.from_row(await pm_db.set_customer(deps.pool, pm_id, customer_id))


async def list_payment_methods(
    deps: Deps, tenant: Tenant, page: PageRequest, customer: str | None
) -> tuple[list[PaymentMethod], bool]:
    rows, has_more = await pm_db.list_payment_methods(
        deps.pool, tenant.merchant_id, tenant.livemode, page, customer
    )
    return [PaymentMethod.from_row(r) for r in rows], has_more
