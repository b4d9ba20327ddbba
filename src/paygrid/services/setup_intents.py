"""Setup intents: save a customer's method for later off-session charges without charging
it. Confirming verifies the card at its provider (a zero-amount authorization at the
simulator, a SetupIntent at Stripe), with 3-D Secure when the card needs it; on success
the method is attached to the customer with a mandate. See docs/billing.md."""

from __future__ import annotations

from typing import Any

from paygrid.connectors.base import (
    ConnectorError,
    CustomerVault,
    MethodSetup,
    OutcomeUnknown,
    SetupRequest,
)
from paygrid.db import setup_intents as setup_db
from paygrid.db.executor import Executor
from paygrid.db.pagination import PageRequest
from paygrid.db.payment_methods import PaymentMethodRow
from paygrid.db.setup_intents import SetupIntentRow
from paygrid.dependencies import Deps
from paygrid.domain.errors import (
    CapabilityNotSupported,
    InvalidRequest,
    ProviderUnavailable,
    ResourceMissing,
)
from paygrid.domain.events import EventType
from paygrid.domain.setup_intents import SetupAction, SetupIntentStatus
from paygrid.domain.url_safety import check_redirect_url
from paygrid.ids import new_id
from paygrid.schemas.setup_intents import (
    SetupIntent,
    SetupIntentCancel,
    SetupIntentConfirm,
    SetupIntentCreate,
)
from paygrid.services import payment_method_ownership as ownership
from paygrid.services import payment_methods
from paygrid.services import setup_outcomes as outcomes
from paygrid.services.billing.clocks import deps_for_customer
from paygrid.services.context import Tenant

_SYNCED = frozenset({SetupIntentStatus.REQUIRES_ACTION, SetupIntentStatus.PROCESSING})


async def create_setup_intent(deps: Deps, tenant: Tenant, params: SetupIntentCreate) -> SetupIntent:
    """A setup intent for ``customer`` (and ``payment_method`` if given); with ``confirm``,
    confirmed at once."""
    if params.return_url is not None:
        check_redirect_url(params.return_url, livemode=tenant.livemode, param="return_url")
    if params.customer is not None:
        await payment_methods.require_customer(deps.pool, tenant, params.customer)
        deps = await deps_for_customer(deps, params.customer)  # a test clock's time, if any
    if params.payment_method is not None:
        await _usable(deps.pool, tenant, params.payment_method, params.customer)
    now = deps.clock.now()
    row = SetupIntentRow(
        id=new_id("seti"),
        merchant_id=tenant.merchant_id,
        livemode=tenant.livemode,
        status=SetupIntentStatus.REQUIRES_PAYMENT_METHOD
        if params.payment_method is None
        else SetupIntentStatus.REQUIRES_CONFIRMATION,
        customer_id=params.customer,
        payment_method_id=params.payment_method,
        usage=params.usage,
        description=params.description,
        metadata=params.metadata,
        return_url=params.return_url,
        connector=None,
        connector_account_id=None,
        attempt_key=None,
        provider_reference=None,
        last_setup_error=None,
        next_action=None,
        mandate_id=None,
        cancellation_reason=None,
        created_at=now,
        updated_at=now,
    )
    async with deps.pool.acquire() as conn, conn.transaction():
        await setup_db.insert(conn, row)
        await outcomes.emit(conn, row, EventType.SETUP_INTENT_CREATED, now)
    if not params.confirm:
        return SetupIntent.from_row(row)
    mandate = None if params.mandate_data is None else params.mandate_data.model_dump()
    return await _confirm(deps, tenant, row, mandate)


async def confirm_setup_intent(
    deps: Deps, tenant: Tenant, setup_intent_id: str, params: SetupIntentConfirm
) -> SetupIntent:
    """Verify the method at its provider: ``succeeded`` (saved, with its mandate),
    ``requires_action`` (3-D Secure at ``next_action``) or a 402 card error."""
    if params.return_url is not None:
        check_redirect_url(params.return_url, livemode=tenant.livemode, param="return_url")
    row = await _get(deps.pool, tenant, setup_intent_id)
    deps = await deps_for_customer(deps, row.customer_id)
    if params.payment_method is not None or params.return_url is not None:
        changes: dict[str, Any] = {"return_url": params.return_url or row.return_url}
        if params.payment_method is not None:
            await _usable(deps.pool, tenant, params.payment_method, row.customer_id)
            changes["payment_method_id"] = params.payment_method
        row = await outcomes.move(deps, row, SetupAction.ATTACH_METHOD, changes)
    mandate = None if params.mandate_data is None else params.mandate_data.model_dump()
    return await _confirm(deps, tenant, row, mandate)


async def _confirm(
    deps: Deps, tenant: Tenant, row: SetupIntentRow, mandate: dict[str, Any] | None
) -> SetupIntent:
    if row.payment_method_id is None:
        raise InvalidRequest(
            "A payment method is required to confirm a setup intent.",
            param="payment_method",
            code="parameter_missing",
        )
    method = await _usable(deps.pool, tenant, row.payment_method_id, row.customer_id)
    connector = await deps.connectors.connector_for(deps.pool, method.connector_account_id)
    if not isinstance(connector, MethodSetup):
        raise CapabilityNotSupported(
            f"{method.connector} cannot save a card without charging it; pay with "
            "setup_future_usage instead.",
            param="payment_method",
        )
    request = SetupRequest(
        idempotency_key=new_id("setatt"),
        payment_method_token=method.connector_reference,
        return_url=row.return_url or deps.settings.base_url(),
        setup_intent_id=row.id,
        customer_reference=await _customer_reference(deps, tenant, row, connector, method),
    )
    begun = await outcomes.move(
        deps,
        row,
        SetupAction.BEGIN,
        {
            "attempt_key": request.idempotency_key,
            "connector": method.connector,
            "connector_account_id": method.connector_account_id,
            "last_setup_error": None,
            "mandate_data": mandate,
        },
    )
    try:
        async with deps.connectors.guard(method.connector_account_id, "setup"):
            result = await connector.setup_method(request)
    except OutcomeUnknown:
        return SetupIntent.from_row(begun)  # still processing: retrieving it asks again
    except ConnectorError:
        await outcomes.move(deps, begun, SetupAction.RELEASE, {})
        raise ProviderUnavailable(
            "The payment provider could not be reached; nothing was saved. Confirm again."
        ) from None
    return await outcomes.apply(deps, begun, result, raise_decline=True)


async def _customer_reference(
    deps: Deps, tenant: Tenant, row: SetupIntentRow, connector: object, method: PaymentMethodRow
) -> str | None:
    if row.customer_id is None or method.connector_account_id is None:
        return None
    if not isinstance(connector, CustomerVault):
        return None
    customer = await payment_methods.require_customer(deps.pool, tenant, row.customer_id)
    return await payment_methods.provider_customer(
        deps, connector, customer, method.connector_account_id
    )


async def get_setup_intent(deps: Deps, tenant: Tenant, setup_intent_id: str) -> SetupIntent:
    """The setup intent; one waiting for 3-D Secure or an unknown outcome asks its provider
    first, so the customer's authentication shows as soon as they are back."""
    row = await _get(deps.pool, tenant, setup_intent_id)
    deps = await deps_for_customer(deps, row.customer_id)
    if row.status not in _SYNCED or row.attempt_key is None:
        return SetupIntent.from_row(row)
    connector = await deps.connectors.connector_for(deps.pool, row.connector_account_id)
    if not isinstance(connector, MethodSetup) or row.provider_reference is None:
        return SetupIntent.from_row(row)
    try:
        async with deps.connectors.guard(row.connector_account_id, "retrieve_setup"):
            result = await connector.retrieve_setup(row.attempt_key, row.provider_reference)
    except ConnectorError:
        return SetupIntent.from_row(row)
    try:
        return await outcomes.apply(deps, row, result, raise_decline=False)
    except outcomes.SetupIntentUnexpectedState:  # another request recorded it first
        return SetupIntent.from_row(await _get(deps.pool, tenant, setup_intent_id))


async def cancel_setup_intent(
    deps: Deps, tenant: Tenant, setup_intent_id: str, params: SetupIntentCancel
) -> SetupIntent:
    row = await _get(deps.pool, tenant, setup_intent_id)
    deps = await deps_for_customer(deps, row.customer_id)
    changes = {"cancellation_reason": params.cancellation_reason, "next_action": None}
    return SetupIntent.from_row(await outcomes.move(deps, row, SetupAction.CANCEL, changes))


async def list_setup_intents(
    deps: Deps, tenant: Tenant, page: PageRequest, customer: str | None
) -> tuple[list[SetupIntent], bool]:
    rows, has_more = await setup_db.list_setup_intents(
        deps.pool, tenant.merchant_id, tenant.livemode, page, customer
    )
    return [SetupIntent.from_row(r) for r in rows], has_more


async def _usable(
    conn: Executor, tenant: Tenant, pm_id: str, customer_id: str | None
) -> PaymentMethodRow:
    """The method, if the ownership rule lets this customer's setup use it."""
    method = await ownership.usable_method(conn, tenant, pm_id, customer_id=customer_id)
    if method is None:
        raise InvalidRequest(
            f"No such payment_method: '{pm_id}'", param="payment_method", code="resource_missing"
        )
    return method


async def _get(conn: Executor, tenant: Tenant, setup_intent_id: str) -> SetupIntentRow:
    row = await setup_db.get(conn, tenant.merchant_id, tenant.livemode, setup_intent_id)
    if row is None:
        raise ResourceMissing(f"No such setup_intent: '{setup_intent_id}'", param="id")
    return row
