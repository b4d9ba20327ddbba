"""Payment methods over the API: tokenize a card into one (test mode), read, list, attach
to and detach from customers. (What a payment pays with: ``payment_method_sources``.)"""

from __future__ import annotations

from datetime import datetime

from paygrid.connectors.base import CustomerVault, InvalidCard, TokenizedCard
from paygrid.db import customers as customers_db
from paygrid.db import payment_methods as pm_db
from paygrid.db.customers import CustomerRow
from paygrid.db.executor import Connection, Executor
from paygrid.db.pagination import PageRequest
from paygrid.db.payment_methods import PaymentMethodRow
from paygrid.dependencies import Deps
from paygrid.domain.errors import CardError, InvalidRequest, PermissionDenied, ResourceMissing
from paygrid.domain.events import EventType
from paygrid.ids import new_id
from paygrid.schemas.customers import Customer
from paygrid.schemas.payment_methods import PaymentMethod, PaymentMethodCreate
from paygrid.services import payment_method_ownership as ownership
from paygrid.services.context import Tenant
from paygrid.services.payment_method_sources import (
    MagicMethod,
    MethodSource,
    ProviderTokenMethod,
    RawCard,
    SavedMethod,
    new_method_row,
    source_of,
    tokenize,
    tokenize_at,
)
from paygrid.services.snapshots import emit_object

# What a payment pays with lives in ``payment_method_sources``; its names stay importable
# from here for the payment path.
__all__ = [
    "MagicMethod",
    "MethodSource",
    "ProviderTokenMethod",
    "RawCard",
    "SavedMethod",
    "attach",
    "create_payment_method",
    "detach",
    "detach_all",
    "emit_detached",
    "get_payment_method",
    "list_payment_methods",
    "new_method_row",
    "provider_customer",
    "require_customer",
    "source_of",
    "store_token",
    "tokenize",
    "tokenize_at",
]


async def store_token(
    conn: Executor,
    tenant: Tenant,
    token: TokenizedCard,
    connector: str,
    *,
    customer_id: str | None = None,
    metadata: dict[str, str] | None = None,
) -> PaymentMethodRow:
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
) -> CustomerRow:
    """The customer, not deleted; ``lock`` holds it against a concurrent delete."""
    row = await customers_db.get_customer(
        conn, tenant.merchant_id, tenant.livemode, customer_id, lock=lock
    )
    if row is None or row.deleted:
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
    account_id = row.connector_account_id
    if account_id is not None:
        connector = await deps.connectors.connector_for(deps.pool, account_id)
        if isinstance(connector, CustomerVault):
            reference = await provider_customer(deps, connector, customer, account_id)
            try:
                async with deps.connectors.guard(account_id, "attach_payment_method"):
                    await connector.attach_payment_method(row.connector_reference, reference)
            except InvalidCard as error:
                raise CardError(str(error), param="payment_method") from None
    async with deps.pool.acquire() as conn, conn.transaction():
        await require_customer(conn, tenant, customer_id, lock=True)
        attached = await pm_db.attach(conn, pm_id, customer_id)
        if attached is None:  # another customer's attach won meanwhile
            raise ownership.attached_elsewhere(pm_id)
        view = PaymentMethod.from_row(attached)
        if row.customer_id != customer_id:
            snapshot = view.model_dump(mode="json")
            await emit_object(
                conn,
                attached,
                EventType.PAYMENT_METHOD_ATTACHED,
                snapshot,
                created_at=deps.clock.now(),
            )
    return view


async def detach(deps: Deps, tenant: Tenant, pm_id: str) -> PaymentMethod:
    """Detach a payment method from its customer, with ``payment_method.detached``. It pays
    for nothing until attached again. Detaching an unattached method changes nothing. A
    method that was its customer's default stops being it, with ``customer.updated``."""
    row = await _get(deps.pool, tenant, pm_id)
    async with deps.pool.acquire() as conn, conn.transaction():
        # The customer first (as updating its default locks it before the method).
        customer = await customers_db.clear_default_method(conn, pm_id)
        detached = await pm_db.detach(conn, pm_id, deps.clock.now())
        if detached is None:
            return PaymentMethod.from_row(row)
        if customer is not None:  # it was the default: invoices no longer charge it
            snapshot = Customer.from_row(customer).model_dump(mode="json")
            await emit_object(
                conn,
                customer,
                EventType.CUSTOMER_UPDATED,
                snapshot,
                created_at=detached.detached_at,
            )
        return await emit_detached(conn, detached)


async def detach_all(conn: Connection, customer_id: str, now: datetime) -> int:
    """Detach every method of a customer being deleted or erased at ``now``, in the
    caller's transaction, each with its ``payment_method.detached`` event."""
    rows = await pm_db.detach_all(conn, customer_id, now)
    for row in rows:
        await emit_detached(conn, row)
    return len(rows)


async def emit_detached(conn: Connection, row: PaymentMethodRow) -> PaymentMethod:
    view = PaymentMethod.from_row(row)
    await emit_object(conn, row, EventType.PAYMENT_METHOD_DETACHED, view.model_dump(mode="json"))
    return view


async def _get(conn: Executor, tenant: Tenant, pm_id: str) -> PaymentMethodRow:
    row = await pm_db.get_payment_method(conn, tenant.merchant_id, tenant.livemode, pm_id)
    if row is None:
        raise ResourceMissing(f"No such payment_method: '{pm_id}'", param="id")
    return row


async def provider_customer(
    deps: Deps, vault: CustomerVault, customer: CustomerRow, account_id: str
) -> str:
    """The customer's id at the provider, creating it once (the idempotency key makes a
    concurrent or repeated create return the same provider customer)."""
    existing = await customers_db.connector_reference(deps.pool, customer.id, account_id)
    if existing is not None:
        return existing
    async with deps.connectors.guard(account_id, "create_customer"):
        reference = await vault.create_customer(
            customer.email, customer.name, f"{customer.id}:{account_id}"
        )
    return await customers_db.save_connector_reference(
        deps.pool, customer.id, account_id, reference
    )


async def list_payment_methods(
    deps: Deps, tenant: Tenant, page: PageRequest, customer: str | None
) -> tuple[list[PaymentMethod], bool]:
    rows, has_more = await pm_db.list_payment_methods(
        deps.pool, tenant.merchant_id, tenant.livemode, page, customer
    )
    return [PaymentMethod.from_row(r) for r in rows], has_more
