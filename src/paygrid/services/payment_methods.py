"""Tokenize cards into payment methods, and look them up for payments."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from paygrid.connectors.base import (
    CardDetails,
    CardTokenizer,
    CustomerVault,
    InvalidCard,
    TokenizedCard,
)
from paygrid.connectors.simulator.cards import MAGIC_PAYMENT_METHODS
from paygrid.db import connector_accounts as accounts_db
from paygrid.db import customers as customers_db
from paygrid.db import payment_methods as pm_db
from paygrid.db.executor import Connection, Executor
from paygrid.db.pagination import PageRequest
from paygrid.domain.errors import CardError, InvalidRequest, PermissionDenied, ResourceMissing
from paygrid.domain.events import EventType
from paygrid.ids import new_id
from paygrid.schemas.payment_methods import (
    CardInput,
    PaymentMethod,
    PaymentMethodCreate,
    PaymentMethodData,
)
from paygrid.services import payment_method_ownership as ownership
from paygrid.services.context import Deps, Tenant
from paygrid.services.snapshots import emit

_CARD_ERROR_CODES = {
    "number": "incorrect_number",
    "exp_month": "invalid_expiry_month",
    "exp_year": "invalid_expiry_year",
    "cvc": "invalid_cvc",
}


async def tokenize(
    deps: Deps, tenant: Tenant, card: CardInput, *, param_prefix: str
) -> TokenizedCard:
    """Tokenize at the built-in simulator (``/v1/payment_methods``)."""
    tokenizer = deps.connectors.tokenizer(tenant.livemode)
    return await tokenize_at(tokenizer, card_details(card), param_prefix=param_prefix)


def card_details(card: CardInput) -> CardDetails:
    return CardDetails(card.number, card.exp_month, card.exp_year, card.cvc)


async def tokenize_at(
    tokenizer: CardTokenizer, details: CardDetails, *, param_prefix: str
) -> TokenizedCard:
    try:
        return await tokenizer.tokenize_card(details)
    except InvalidCard as error:
        raise CardError(
            str(error),
            param=f"{param_prefix}[{error.param}]",
            code=_CARD_ERROR_CODES.get(error.param, "card_declined"),
        ) from None


@dataclass(frozen=True, slots=True)
class SavedMethod:
    row: asyncpg.Record


@dataclass(frozen=True, slots=True)
class RawCard:
    """Card data from this request, held in memory only until a connector tokenizes it."""

    details: CardDetails
    param_prefix: str = "payment_method_data[card]"


@dataclass(frozen=True, slots=True)
class MagicMethod:
    """A test-mode magic id such as ``pm_card_visa`` (simulator only)."""

    magic_id: str


@dataclass(frozen=True, slots=True)
class ProviderTokenMethod:
    """A token the provider's own fields made (Stripe.js), usable at its account only."""

    account_id: str
    token: str


MethodSource = SavedMethod | RawCard | MagicMethod | ProviderTokenMethod | None
# (None: a hosted/redirect flow at the provider.)


async def source_of(
    deps: Deps,
    tenant: Tenant,
    payment_method: str | None,
    data: PaymentMethodData | None,
    *,
    customer_id: str | None,
    payment_id: str | None = None,
    idempotency_key: str | None = None,
) -> MethodSource:
    """What a payment request pays with, before any connector is chosen. A saved method is
    checked against the payment (``payment_id``, or the one being created with
    ``idempotency_key``) and its customer (``payment_method_ownership``)."""
    if payment_method is not None and data is not None:
        raise InvalidRequest(
            "Pass either payment_method or payment_method_data, not both.",
            param="payment_method_data",
        )
    if data is not None and data.provider_token is not None:
        token = data.provider_token
        account = await accounts_db.get_account(
            deps.pool, tenant.merchant_id, tenant.livemode, token.connector_account
        )
        if account is None:
            raise InvalidRequest(
                f"No such connector account: '{token.connector_account}'",
                param="payment_method_data[provider_token][connector_account]",
                code="resource_missing",
            )
        return ProviderTokenMethod(account["id"], token.token)
    if data is not None and data.card is not None:
        deps.connectors.tokenizer(tenant.livemode)  # raw card data: test mode only
        return RawCard(card_details(data.card))
    if payment_method is None:
        return None
    row = await ownership.usable_method(
        deps.pool,
        tenant,
        payment_method,
        customer_id=customer_id,
        payment_id=payment_id,
        idempotency_key=idempotency_key,
    )
    if row is not None:
        return SavedMethod(row)
    if not tenant.livemode and payment_method in MAGIC_PAYMENT_METHODS:
        return MagicMethod(payment_method)
    raise InvalidRequest(
        f"No such payment_method: '{payment_method}'",
        param="payment_method",
        code="resource_missing",
    )


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
    tenant: Tenant,
    token: TokenizedCard,
    connector: str,
    now: datetime,
    connector_account_id: str | None = None,
    customer_id: str | None = None,
) -> dict[str, Any]:
    """The row of a payment method made from a fresh token, for writing inside a larger
    statement."""
    return {
        "id": new_id("pm"),
        "merchant_id": tenant.merchant_id,
        "livemode": tenant.livemode,
        "type": "card",
        "card_brand": token.brand,
        "card_last4": token.last4,
        "card_exp_month": token.exp_month,
        "card_exp_year": token.exp_year,
        "connector": connector,
        "connector_reference": token.token,
        "connector_account_id": connector_account_id,
        "card_country": token.country,
        "customer_id": customer_id,
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
    async with deps.pool.acquire() as conn, conn.transaction():
        if params.customer is not None:  # not deleted meanwhile (deleting detaches)
            await require_customer(conn, tenant, params.customer, lock=True)
        row = await store_token(
            conn,
            tenant,
            token,
            deps.connectors.simulator.name,
            customer_id=params.customer,
            metadata=params.metadata,
        )
    return PaymentMethod.from_row(row)


async def require_customer(
    conn: Executor, tenant: Tenant, customer_id: str, *, lock: bool = False
) -> asyncpg.Record:
    """The customer, not deleted; ``lock`` holds it against a concurrent delete."""
    row = await customers_db.get_customer(
        conn, tenant.merchant_id, tenant.livemode, customer_id, lock=lock
    )
    if row is None or row["deleted_at"] is not None:
        raise InvalidRequest(
            f"No such customer: '{customer_id}'", param="customer", code="resource_missing"
        )
    return row


async def get_payment_method(deps: Deps, tenant: Tenant, pm_id: str) -> PaymentMethod:
    row = await pm_db.get_payment_method(deps.pool, tenant.merchant_id, tenant.livemode, pm_id)
    if row is None:
        raise ResourceMissing(f"No such payment_method: '{pm_id}'", param="id")
    return PaymentMethod.from_row(row)


async def attach(deps: Deps, tenant: Tenant, pm_id: str, customer_id: str) -> PaymentMethod:
    """Attach a payment method to a customer; one attached to another customer is refused
    (detach it first). A method saved at a provider that keeps customers (Stripe) is
    attached there too, to the customer's counterpart, created on first need."""
    row = await _get(deps.pool, tenant, pm_id)
    ownership.check_attach(row, customer_id)
    customer = await require_customer(deps.pool, tenant, customer_id)
    account_id = row["connector_account_id"]
    if account_id is not None:
        connector = await deps.connectors.connector_for(deps.pool, account_id)
        if isinstance(connector, CustomerVault):
            reference = await provider_customer(deps, connector, customer, account_id)
            try:
                async with deps.connectors.guard(account_id, "attach_payment_method"):
                    await connector.attach_payment_method(row["connector_reference"], reference)
            except InvalidCard as error:
                raise CardError(str(error), param="payment_method") from None
    async with deps.pool.acquire() as conn, conn.transaction():
        await require_customer(conn, tenant, customer_id, lock=True)
        attached = await pm_db.attach(conn, pm_id, customer_id)
    if attached is None:  # another customer's attach won meanwhile
        raise ownership.attached_elsewhere(pm_id)
    return PaymentMethod.from_row(attached)


async def detach(deps: Deps, tenant: Tenant, pm_id: str) -> PaymentMethod:
    """Detach a payment method from its customer, with ``payment_method.detached``. It pays
    for nothing until attached again. Detaching an unattached method changes nothing."""
    row = await _get(deps.pool, tenant, pm_id)
    async with deps.pool.acquire() as conn, conn.transaction():
        detached = await pm_db.detach(conn, pm_id)
        if detached is None:
            return PaymentMethod.from_row(row)
        return await emit_detached(conn, detached)


async def detach_all(conn: Connection, customer_id: str) -> int:
    """Detach every method of a customer being deleted or erased, in the caller's
    transaction, each with its ``payment_method.detached`` event."""
    rows = await pm_db.detach_all(conn, customer_id)
    for row in rows:
        await emit_detached(conn, row)
    return len(rows)


async def emit_detached(conn: Connection, row: asyncpg.Record) -> PaymentMethod:
    view = PaymentMethod.from_row(row)
    await emit(conn, row, EventType.PAYMENT_METHOD_DETACHED, view.model_dump(mode="json"))
    return view


async def _get(conn: Executor, tenant: Tenant, pm_id: str) -> asyncpg.Record:
    row = await pm_db.get_payment_method(conn, tenant.merchant_id, tenant.livemode, pm_id)
    if row is None:
        raise ResourceMissing(f"No such payment_method: '{pm_id}'", param="id")
    return row


async def provider_customer(
    deps: Deps, vault: CustomerVault, customer: asyncpg.Record, account_id: str
) -> str:
    """The customer's id at the provider, creating it once (the idempotency key makes a
    concurrent or repeated create return the same provider customer)."""
    existing = await customers_db.connector_reference(deps.pool, customer["id"], account_id)
    if existing is not None:
        return existing
    async with deps.connectors.guard(account_id, "create_customer"):
        reference = await vault.create_customer(
            customer["email"], customer["name"], f"{customer['id']}:{account_id}"
        )
    return await customers_db.save_connector_reference(
        deps.pool, customer["id"], account_id, reference
    )


async def list_payment_methods(
    deps: Deps, tenant: Tenant, page: PageRequest, customer: str | None
) -> tuple[list[PaymentMethod], bool]:
    rows, has_more = await pm_db.list_payment_methods(
        deps.pool, tenant.merchant_id, tenant.livemode, page, customer
    )
    return [PaymentMethod.from_row(r) for r in rows], has_more
