"""``/v1/payment_methods``: tokenize (publishable keys allowed), retrieve, attach, list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from paygrid.api.authentication import any_key, principal_of, secret_key
from paygrid.api.dependencies import deps_of
from paygrid.api.read_only import read_only, reads_of
from paygrid.api.responses import CARD_ERRORS, COMMON_ERRORS, Page, json_response, list_response
from paygrid.schemas.common import ListObject
from paygrid.schemas.payment_methods import (
    PaymentMethod,
    PaymentMethodAttach,
    PaymentMethodCreate,
)
from paygrid.services import payment_methods
from paygrid.services.context import Tenant

router = APIRouter(prefix="/v1/payment_methods", tags=["Payment methods"], responses=COMMON_ERRORS)
SecretTenant = Annotated[Tenant, Depends(secret_key)]


async def tokenizing_key(request: Request) -> Tenant:
    """A publishable key, or a secret key with the scope the path needs
    (``customers:write``, as for attaching: see docs/scopes.md)."""
    if principal_of(request).kind == "secret":
        return await secret_key(request)
    return await any_key(request)


TokenizingTenant = Annotated[Tenant, Depends(tokenizing_key)]


@router.post(
    "", response_model=PaymentMethod, responses={402: CARD_ERRORS[402]}, summary="Tokenize a card"
)
async def create_payment_method(
    request: Request, body: PaymentMethodCreate, tenant: TokenizingTenant
) -> Response:
    """Test mode: card data goes straight to the simulator's tokenizer (Luhn, expiry and
    brand are checked) and comes back as a `pm_...` with brand, last4 and expiry. paygrid
    never stores or logs the number or CVC. Publishable keys may call this, but only a
    secret key may attach the new method to a `customer`. A secret key needs the
    `customers:write` scope."""
    can_attach = principal_of(request).kind == "secret"
    return json_response(
        await payment_methods.create_payment_method(
            deps_of(request), tenant, body, can_attach=can_attach
        )
    )


@router.get("", response_model=ListObject[PaymentMethod], summary="List payment methods")
@read_only
async def list_payment_methods(
    request: Request,
    tenant: SecretTenant,
    page: Page,
    customer: Annotated[str | None, Query()] = None,
) -> Response:
    data, has_more = await payment_methods.list_payment_methods(
        reads_of(request), tenant, page, customer
    )
    return list_response(request, data, has_more)


@router.get("/{pm_id}", response_model=PaymentMethod, summary="Retrieve a payment method")
async def get_payment_method(request: Request, pm_id: str, tenant: SecretTenant) -> Response:
    return json_response(await payment_methods.get_payment_method(deps_of(request), tenant, pm_id))


@router.post("/{pm_id}/attach", response_model=PaymentMethod, summary="Attach to a customer")
async def attach(
    request: Request, pm_id: str, body: PaymentMethodAttach, tenant: SecretTenant
) -> Response:
    """A method attached to another customer is refused (`400
    payment_method_already_attached`): detach it first."""
    return json_response(
        await payment_methods.attach(deps_of(request), tenant, pm_id, body.customer)
    )


@router.post("/{pm_id}/detach", response_model=PaymentMethod, summary="Detach from its customer")
async def detach(request: Request, pm_id: str, tenant: SecretTenant) -> Response:
    """Sends `payment_method.detached`. A detached method pays for nothing until it is
    attached again."""
    return json_response(await payment_methods.detach(deps_of(request), tenant, pm_id))
