"""``/v1/reconciliation_runs`` (compare an account with its provider, on the worker) and
``/v1/reconciliation_discrepancies`` (what runs found, and resolving one with a note)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from paygrid.api.authentication import secret_key
from paygrid.api.dependencies import deps_of
from paygrid.api.read_only import read_only, reads_of
from paygrid.api.responses import COMMON_ERRORS, Page, json_response, list_response
from paygrid.domain.reconciliation import DiscrepancyStatus, DiscrepancyType
from paygrid.schemas.common import ListObject
from paygrid.schemas.reconciliation import (
    DiscrepancyResolve,
    ReconciliationDiscrepancy,
    ReconciliationRun,
    ReconciliationRunCreate,
)
from paygrid.services.context import Tenant
from paygrid.services.reconciliation import discrepancies, runs

router = APIRouter(
    prefix="/v1/reconciliation_runs", tags=["Reconciliation"], responses=COMMON_ERRORS
)
discrepancies_router = APIRouter(
    prefix="/v1/reconciliation_discrepancies", tags=["Reconciliation"], responses=COMMON_ERRORS
)
SecretTenant = Annotated[Tenant, Depends(secret_key)]


@router.post("", response_model=ReconciliationRun, summary="Create a reconciliation run")
async def create_run(
    request: Request, body: ReconciliationRunCreate, tenant: SecretTenant
) -> Response:
    """Queue a run over [from, to) of a Paystack account; the worker processes it."""
    return json_response(await runs.create_run(deps_of(request), tenant, body))


@router.get("", response_model=ListObject[ReconciliationRun], summary="List reconciliation runs")
@read_only
async def list_runs(request: Request, tenant: SecretTenant, page: Page) -> Response:
    data, has_more = await runs.list_runs(reads_of(request), tenant, page)
    return list_response(request, data, has_more)


@router.get("/{run_id}", response_model=ReconciliationRun, summary="Retrieve a run")
async def get_run(request: Request, run_id: str, tenant: SecretTenant) -> Response:
    return json_response(await runs.get_run(deps_of(request), tenant, run_id))


@discrepancies_router.get(
    "",
    response_model=ListObject[ReconciliationDiscrepancy],
    summary="List reconciliation discrepancies",
)
async def list_discrepancies(
    request: Request,
    tenant: SecretTenant,
    page: Page,
    run: Annotated[str | None, Query(max_length=64)] = None,
    type: Annotated[DiscrepancyType | None, Query()] = None,
    status: Annotated[DiscrepancyStatus | None, Query()] = None,
) -> Response:
    """Newest first; filter by the run that found them, their type and status."""
    data, has_more = await discrepancies.list_discrepancies(
        deps_of(request), tenant, page, run=run, type_=type, status=status
    )
    return list_response(request, data, has_more)


@discrepancies_router.post(
    "/{discrepancy_id}/resolve",
    response_model=ReconciliationDiscrepancy,
    summary="Resolve a discrepancy",
)
async def resolve(
    request: Request, discrepancy_id: str, body: DiscrepancyResolve, tenant: SecretTenant
) -> Response:
    """Mark an open discrepancy resolved, with a note (audited)."""
    return json_response(
        await discrepancies.resolve(deps_of(request), tenant, discrepancy_id, body.note)
    )
