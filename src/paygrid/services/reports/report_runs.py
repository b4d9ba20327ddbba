"""Report runs (Stripe's ``reporting.report_run``): create one, which enqueues the
``report_runs.run`` job in the same transaction; retrieve, list, and download its file.

A run's own row is always read from the primary (it was just written: a replica might not
have it yet); only the summary the job computes reads from the reports' pool.
"""

from __future__ import annotations

from paygrid.db import jobs as jobs_db
from paygrid.db import reports as reports_db
from paygrid.db.reports import ReportFileRow, ReportRunRow
from paygrid.dependencies import Deps
from paygrid.domain.errors import ResourceMissing
from paygrid.domain.pagination import PageRequest
from paygrid.domain.reports import ReportRunStatus, ReportType
from paygrid.ids import new_id
from paygrid.schemas.reports import ReportRun, ReportRunCreate
from paygrid.services.context import Tenant
from paygrid.services.reports import run_job
from paygrid.services.reports.parameters import summary_request


async def create_run(deps: Deps, tenant: Tenant, params: ReportRunCreate) -> ReportRun:
    """A ``queued`` run of checked parameters (the window stored as Unix seconds), and its
    job, committed together."""
    given = params.parameters
    request = summary_request(
        deps.clock.now(),
        start=given.start,
        end=given.end,
        timezone=given.timezone,
        group_by=given.group_by,
        synchronous=False,
    )
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await reports_db.insert_run(
            conn,
            run_id=new_id("frr"),
            merchant_id=tenant.merchant_id,
            livemode=tenant.livemode,
            report_type=ReportType(params.report_type),
            parameters=request.parameters(),
            created_at=deps.clock.now(),
        )
        await jobs_db.enqueue(
            conn,
            run_job.RUN,
            run_job.job_payload(row.id),
            queue=run_job.QUEUE,
            unique_key=f"{run_job.RUN}:{row.id}",
        )
    return ReportRun.from_row(row)


async def get_run(deps: Deps, tenant: Tenant, run_id: str) -> ReportRun:
    row = await _get(deps, tenant, run_id)
    return (await _shown(deps, [row]))[0]


async def list_runs(deps: Deps, tenant: Tenant, page: PageRequest) -> tuple[list[ReportRun], bool]:
    rows, has_more = await reports_db.list_runs(
        deps.pool, tenant.merchant_id, tenant.livemode, page
    )
    return await _shown(deps, rows), has_more


async def run_file(deps: Deps, tenant: Tenant, run_id: str) -> ReportFileRow:
    """A succeeded run's CSV; 404 for another merchant's run, and while it has none."""
    row = await _get(deps, tenant, run_id)
    found = await reports_db.run_file(deps.pool, tenant.merchant_id, tenant.livemode, row.id)
    if found is None:
        raise ResourceMissing(
            f"Report run '{run_id}' has no file yet (status {row.status.value}).",
            param="id",
        )
    return found


async def _get(deps: Deps, tenant: Tenant, run_id: str) -> ReportRunRow:
    row = await reports_db.get_run(deps.pool, tenant.merchant_id, tenant.livemode, run_id)
    if row is None:
        raise ResourceMissing(f"No such report run: '{run_id}'.", param="id")
    return row


async def _shown(deps: Deps, rows: list[ReportRunRow]) -> list[ReportRun]:
    done = [r.id for r in rows if r.status is ReportRunStatus.SUCCEEDED]
    sizes = await reports_db.file_sizes(deps.pool, done) if done else {}
    return [ReportRun.from_row(r, sizes.get(r.id)) for r in rows]
