"""``/v1/reports/payments_summary`` (synchronous, JSON or CSV) and ``/v1/report_runs``
(asynchronous, Stripe's ``reporting.report_run``, with a CSV file)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from paygrid.api.authentication import secret_key
from paygrid.api.dependencies import deps_of
from paygrid.api.read_only import read_only, reads_of
from paygrid.api.responses import COMMON_ERRORS, Page, json_response, list_response
from paygrid.schemas.common import ListObject
from paygrid.schemas.reports import PaymentsSummary, ReportRun, ReportRunCreate
from paygrid.services.context import Tenant
from paygrid.services.reports import payments_summary as summaries
from paygrid.services.reports import report_runs
from paygrid.services.reports.parameters import summary_request

router = APIRouter(prefix="/v1/reports", tags=["Reports"], responses=COMMON_ERRORS)
runs_router = APIRouter(prefix="/v1/report_runs", tags=["Reports"], responses=COMMON_ERRORS)
SecretTenant = Annotated[Tenant, Depends(secret_key)]
CSV_TYPE = "text/csv; charset=utf-8"
_CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
}
_MOMENT = "Unix seconds, or a date (YYYY-MM-DD) meaning its midnight in `timezone`."
_MOMENT_PATTERN = r"^([0-9]{1,11}|[0-9]{4}-[0-9]{2}-[0-9]{2})$"
_DIMENSION = "(day|status|currency|connector)"
_GROUP_BY_PATTERN = rf"^({_DIMENSION}(,{_DIMENSION})*)?$"  # empty: by currency only


def _wants_csv(request: Request) -> bool:
    return "text/csv" in request.headers.get("accept", "").lower()


@router.get(
    "/payments_summary",
    response_model=PaymentsSummary,
    summary="Summarize payments",
    responses=_CSV,
)
@read_only
async def payments_summary(
    request: Request,
    tenant: SecretTenant,
    start: Annotated[
        str | None,
        Query(alias="from", pattern=_MOMENT_PATTERN, description=f"{_MOMENT} Inclusive."),
    ] = None,
    end: Annotated[
        str | None,
        Query(alias="to", pattern=_MOMENT_PATTERN, description=f"{_MOMENT} Exclusive."),
    ] = None,
    timezone: Annotated[
        str, Query(max_length=64, description="IANA time zone the days are cut in.")
    ] = "UTC",
    group_by: Annotated[
        str | None,
        Query(
            pattern=_GROUP_BY_PATTERN,
            description="Comma-separated: day, status, currency, connector.",
        ),
    ] = None,
) -> Response:
    """Payments created in `[from, to)` (default: the last 30 days), grouped by the chosen
    dimensions and always by currency: `count`, `amount`, `amount_received`,
    `amount_refunded`, `fee`, `net` (minor units) and `fee_pending_count`. At most 366 days
    (400 `report_window_too_large`: create a report run). `Accept: text/csv` returns the same
    rows as CSV."""
    deps = reads_of(request)
    checked = summary_request(
        deps.clock.now(),
        start=start,
        end=end,
        timezone=timezone,
        group_by=group_by,
        synchronous=True,
    )
    if _wants_csv(request):
        content = await summaries.payments_summary_csv(deps, tenant, checked)
        return Response(content, media_type=CSV_TYPE)
    return json_response(await summaries.payments_summary(deps, tenant, checked))


@runs_router.post("", response_model=ReportRun, summary="Create a report run")
async def create_run(request: Request, body: ReportRunCreate, tenant: SecretTenant) -> Response:
    """Answers at once with the run `queued`; the worker then computes it (`running`) and it
    ends `succeeded`, with `result.url` to download its CSV, or `failed` with `error`. The
    parameters are the summary's (windows up to 3660 days)."""
    return json_response(await report_runs.create_run(deps_of(request), tenant, body))


@runs_router.get("", response_model=ListObject[ReportRun], summary="List report runs")
@read_only
async def list_runs(request: Request, tenant: SecretTenant, page: Page) -> Response:
    data, has_more = await report_runs.list_runs(reads_of(request), tenant, page)
    return list_response(request, data, has_more)


@runs_router.get("/{run_id}", response_model=ReportRun, summary="Retrieve a report run")
async def get_run(request: Request, run_id: str, tenant: SecretTenant) -> Response:
    return json_response(await report_runs.get_run(deps_of(request), tenant, run_id))


@runs_router.get(
    "/{run_id}/file", summary="Download a report run's file", responses=_CSV, response_model=None
)
async def run_file(request: Request, run_id: str, tenant: SecretTenant) -> Response:
    """The CSV of a succeeded run: byte for byte the synchronous summary's CSV of the same
    parameters. 404 while the run has no file."""
    found = await report_runs.run_file(deps_of(request), tenant, run_id)
    return Response(
        found.content,
        media_type=CSV_TYPE,
        headers={"content-disposition": f'attachment; filename="{found.report_run_id}.csv"'},
    )
