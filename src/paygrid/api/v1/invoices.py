"""``/v1/invoices``: create (from pending invoice items), retrieve, list, and the actions
finalize, pay, void and mark_uncollectible."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from paygrid.api.authentication import secret_key
from paygrid.api.dependencies import deps_of
from paygrid.api.read_only import read_only, reads_of
from paygrid.api.responses import CARD_ERRORS, COMMON_ERRORS, Page, json_response, list_response
from paygrid.domain.invoices import InvoiceStatus
from paygrid.schemas.common import ListObject
from paygrid.schemas.invoices import Invoice, InvoiceCreate, InvoicePay
from paygrid.services.billing import invoice_payments, invoices
from paygrid.services.context import Tenant

router = APIRouter(prefix="/v1/invoices", tags=["Invoices"], responses=COMMON_ERRORS)
SecretTenant = Annotated[Tenant, Depends(secret_key)]


@router.post("", response_model=Invoice, summary="Create an invoice")
async def create_invoice(request: Request, body: InvoiceCreate, tenant: SecretTenant) -> Response:
    """A `draft` invoice of the customer's pending invoice items in one currency (`currency`,
    or the oldest pending item's); items in other currencies stay pending. 400
    `invoice_no_pending_items` when there is nothing to invoice."""
    return json_response(await invoices.create_invoice(deps_of(request), tenant, body))


@router.get("", response_model=ListObject[Invoice], summary="List invoices")
@read_only
async def list_invoices(
    request: Request,
    tenant: SecretTenant,
    page: Page,
    customer: Annotated[
        str | None, Query(max_length=255, description="Only this customer's invoices.")
    ] = None,
    status: Annotated[
        InvoiceStatus | None, Query(description="Only invoices in this status.")
    ] = None,
) -> Response:
    data, has_more = await invoices.list_invoices(
        reads_of(request), tenant, page, customer=customer, status=status
    )
    return list_response(request, data, has_more)


@router.get("/{invoice_id}", response_model=Invoice, summary="Retrieve an invoice")
async def get_invoice(request: Request, invoice_id: str, tenant: SecretTenant) -> Response:
    return json_response(await invoices.get_invoice(deps_of(request), tenant, invoice_id))


@router.post("/{invoice_id}/finalize", response_model=Invoice, summary="Finalize an invoice")
async def finalize_invoice(request: Request, invoice_id: str, tenant: SecretTenant) -> Response:
    """`draft` → `open`, with the merchant's next number (`{prefix}-{0001}`): consecutive,
    never reused, whatever runs concurrently."""
    return json_response(await invoices.finalize_invoice(deps_of(request), tenant, invoice_id))


@router.post(
    "/{invoice_id}/pay",
    response_model=Invoice,
    responses={402: CARD_ERRORS[402], 502: CARD_ERRORS[502]},
    summary="Pay an invoice",
)
async def pay_invoice(
    request: Request, invoice_id: str, tenant: SecretTenant, body: InvoicePay | None = None
) -> Response:
    """Charge what remains of an `open` (or `uncollectible`) invoice now to `payment_method`
    (a method saved to the invoice's customer: another's is 400 `payment_method_not_owned`,
    an unknown one 404), or to the invoice's `default_payment_method`: `paid` on success. A
    decline is a 402 card error; the invoice stays `open`, `invoice.payment_failed` is sent
    and, for an invoice collected automatically, dunning schedules the next attempt
    (`next_payment_attempt`)."""
    params = body or InvoicePay()
    return json_response(
        await invoice_payments.pay_invoice(deps_of(request), tenant, invoice_id, params)
    )


@router.post("/{invoice_id}/void", response_model=Invoice, summary="Void an invoice")
async def void_invoice(request: Request, invoice_id: str, tenant: SecretTenant) -> Response:
    """`open` or `uncollectible` → `void`. A paid invoice cannot be voided (409
    `invoice_invalid_state`)."""
    return json_response(await invoices.void_invoice(deps_of(request), tenant, invoice_id))


@router.post(
    "/{invoice_id}/mark_uncollectible",
    response_model=Invoice,
    summary="Mark an invoice uncollectible",
)
async def mark_uncollectible(request: Request, invoice_id: str, tenant: SecretTenant) -> Response:
    """`open` → `uncollectible`; it can still be paid or voided."""
    return json_response(await invoices.mark_uncollectible(deps_of(request), tenant, invoice_id))
