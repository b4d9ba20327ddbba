"""``/v1/settlements``: what providers paid out, with fees, and the transactions of each."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from paygrid.api.authentication import secret_key
from paygrid.api.dependencies import deps_of
from paygrid.api.read_only import read_only, reads_of
from paygrid.api.responses import COMMON_ERRORS, Page, UnixTime, json_response, list_response
from paygrid.domain.settlements import SettlementStatus
from paygrid.schemas.common import ListObject
from paygrid.schemas.settlements import (
    Settlement,
    SettlementImport,
    SettlementImportCreate,
    SettlementTransaction,
)
from paygrid.services.context import Tenant
from paygrid.services.settlements import jobs, queries

router = APIRouter(prefix="/v1", tags=["Settlements"], responses=COMMON_ERRORS)
SecretTenant = Annotated[Tenant, Depends(secret_key)]


@router.get("/settlements", response_model=ListObject[Settlement], summary="List settlements")
@read_only
async def list_settlements(
    request: Request,
    tenant: SecretTenant,
    page: Page,
    connector_account: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[SettlementStatus | None, Query()] = None,
    arrival_date_gte: Annotated[
        UnixTime, Query(alias="arrival_date[gte]", description="Unix time, inclusive.")
    ] = None,
    arrival_date_lt: Annotated[
        UnixTime, Query(alias="arrival_date[lt]", description="Unix time, exclusive.")
    ] = None,
) -> Response:
    """Newest first, with cursor pagination; filter by account, status and arrival date."""
    data, has_more = await queries.list_settlements(
        reads_of(request),
        tenant,
        page,
        connector_account=connector_account,
        status=status,
        arrival_from=arrival_date_gte,
        arrival_before=arrival_date_lt,
    )
    return list_response(request, data, has_more)


@router.post(
    "/settlement_imports",
    response_model=SettlementImport,
    status_code=202,
    summary="Import settlements now",
)
async def import_settlements(
    request: Request, body: SettlementImportCreate, tenant: SecretTenant
) -> Response:
    """Queue an import of a Stripe or Paystack account's settlements now (the worker also
    imports every account hourly). Idempotent: nothing is stored twice."""
    queued = await jobs.request_import(deps_of(request), tenant, body.connector_account)
    return json_response(queued, status_code=202)


@router.get(
    "/settlements/{settlement_id}", response_model=Settlement, summary="Retrieve a settlement"
)
async def get_settlement(request: Request, settlement_id: str, tenant: SecretTenant) -> Response:
    return json_response(await queries.get_settlement(deps_of(request), tenant, settlement_id))


@router.get(
    "/settlements/{settlement_id}/transactions",
    response_model=ListObject[SettlementTransaction],
    summary="List a settlement's transactions",
)
@read_only
async def list_transactions(
    request: Request, settlement_id: str, tenant: SecretTenant, page: Page
) -> Response:
    """Each transaction with the paygrid payment or refund it settles."""
    data, has_more = await queries.list_transactions(reads_of(request), tenant, settlement_id, page)
    return list_response(request, data, has_more)
