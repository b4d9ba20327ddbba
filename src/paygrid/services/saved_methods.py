"""Methods saved for later off-session charges: attached to their customer with a mandate
(the customer's acceptance: when, from which IP and browser) once a payment with
``setup_future_usage`` or a setup intent authenticated them; a customer's default method;
reading mandates. See docs/billing.md."""

from __future__ import annotations

from typing import Any

from paygrid.db import mandates as mandates_db
from paygrid.db import payment_methods as pm_db
from paygrid.db.executor import Executor
from paygrid.db.mandates import MandateRow
from paygrid.db.payment_methods import PaymentMethodRow
from paygrid.dependencies import Deps
from paygrid.domain.errors import InvalidRequest, ResourceMissing
from paygrid.ids import new_id
from paygrid.schemas.mandates import Mandate
from paygrid.services import payment_methods
from paygrid.services.context import Tenant


async def require_attached(
    conn: Executor, tenant: Tenant, pm_id: str, customer_id: str
) -> PaymentMethodRow:
    """The method, attached to ``customer_id`` and locked against a detach until the
    caller's transaction ends (a customer's default must be its own method)."""
    row = await pm_db.get_attached(conn, tenant.merchant_id, tenant.livemode, pm_id, customer_id)
    if row is None:
        raise InvalidRequest(
            f"The customer has no payment method '{pm_id}': attach it to the customer first.",
            param="invoice_settings[default_payment_method]",
            code="resource_missing",
        )
    return row


async def save_for_future(
    deps: Deps,
    tenant: Tenant,
    *,
    method_id: str,
    customer_id: str,
    source_id: str,
    mandate_data: dict[str, Any] | None,
) -> MandateRow | None:
    """Attach the method a payment or setup intent (``source_id``) just authenticated to
    its customer (with ``payment_method.attached``, and at a provider that keeps customers)
    and record the customer's acceptance as its mandate. Once per source: ``None`` when the
    source recorded its mandate already."""
    await payment_methods.attach(deps, tenant, method_id, customer_id)
    acceptance = (mandate_data or {}).get("customer_acceptance") or {"type": "offline"}
    online = acceptance.get("online") or {}
    now = deps.clock.now()
    row = MandateRow(
        id=new_id("mandate"),
        merchant_id=tenant.merchant_id,
        livemode=tenant.livemode,
        payment_method_id=method_id,
        customer_id=customer_id,
        source_id=source_id,
        acceptance_type=str(acceptance["type"]),
        ip_address=online.get("ip_address"),
        user_agent=online.get("user_agent"),
        accepted_at=now,
        created_at=now,
    )
    async with deps.pool.acquire() as conn, conn.transaction():
        return await mandates_db.insert_for_method(conn, row)


async def get_mandate(deps: Deps, tenant: Tenant, mandate_id: str) -> Mandate:
    row = await mandates_db.get_mandate(deps.pool, tenant.merchant_id, tenant.livemode, mandate_id)
    if row is None:
        raise ResourceMissing(f"No such mandate: '{mandate_id}'", param="id")
    return Mandate.from_row(row)
