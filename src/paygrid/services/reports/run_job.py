"""The ``report_runs.run`` job: compute a run's summary from the reports' pool (the replica,
when configured and caught up: ``services/read_replica.py``), render it as the synchronous endpoint's CSV and store it with the run's
``succeeded`` status in one statement, with ``reporting.report_run.succeeded``.

A job re-run after its worker died recomputes from the stored parameters (the same window:
Unix seconds) and stores the file once; the last failed attempt leaves the run ``failed``
(``reporting.report_run.failed``).
"""

from __future__ import annotations

from typing import Any, Final

import structlog

from paygrid.db import reports as reports_db
from paygrid.db.executor import Connection
from paygrid.db.jobs import DEFAULT_QUEUE
from paygrid.db.reports import ReportRunRow
from paygrid.dependencies import Deps
from paygrid.domain.events import EventType
from paygrid.domain.reports import ReportRunStatus
from paygrid.schemas.reports import ReportRun
from paygrid.services.context import Tenant
from paygrid.services.read_replica import reads_for
from paygrid.services.reports.parameters import summary_request
from paygrid.services.reports.payments_summary import summary_rows, to_csv
from paygrid.services.snapshots import emit_object
from paygrid.worker.registry import JobContext
from paygrid.worker.retry import RetryPolicy

log = structlog.get_logger("paygrid.reports")

RUN: Final = "report_runs.run"
QUEUE: Final = DEFAULT_QUEUE
RUN_RETRY: Final = RetryPolicy((5.0, 30.0, 120.0))
MAX_ERROR_CHARS: Final = 1000


def job_payload(run_id: str) -> dict[str, Any]:
    return {"report_run": run_id}


async def run(payload: dict[str, Any], context: JobContext) -> None:
    """The job handler."""
    run_id = str(payload["report_run"])
    try:
        await produce(context.deps, run_id)
    except Exception as error:
        if context.attempt >= RUN_RETRY.max_attempts:
            await fail(context.deps, run_id, f"{type(error).__name__}: {error}")
        raise


async def produce(deps: Deps, run_id: str) -> None:
    """Run a queued (or interrupted) report run to ``succeeded``; nothing once it ended."""
    started = await reports_db.start_run(deps.pool, run_id, deps.clock.now())
    if started is None:
        return
    given = started.parameters
    request = summary_request(
        deps.clock.now(),
        start=given["from"],
        end=given["to"],
        timezone=given["timezone"],
        group_by=list(given["group_by"]),
        synchronous=False,
    )
    tenant = Tenant(started.merchant_id, started.livemode)
    # The replica only once it has replayed every write acknowledged so far (the payments the
    # merchant made before asking for the run included), else the primary.
    rows = await summary_rows(await reads_for(deps), tenant, request)
    content = to_csv(request, rows)
    async with deps.pool.acquire() as conn, conn.transaction():
        done = await reports_db.succeed_run(conn, run_id, deps.clock.now(), content, len(rows))
        if done is not None:
            await _emit(conn, done, EventType.REPORT_RUN_SUCCEEDED, len(content))
    log.info("report_run.succeeded", report_run=run_id, rows=len(rows), bytes=len(content))


async def fail(deps: Deps, run_id: str, reason: str) -> None:
    """Leave a run that kept failing ``failed``."""
    log.error("report_run.failed", report_run=run_id, reason=reason)
    async with deps.pool.acquire() as conn, conn.transaction():
        failed = await reports_db.fail_run(conn, run_id, deps.clock.now(), reason[:MAX_ERROR_CHARS])
        if failed is not None:
            await _emit(conn, failed, EventType.REPORT_RUN_FAILED, None)


async def _emit(conn: Connection, row: ReportRunRow, event: EventType, size: int | None) -> None:
    shown = ReportRun.from_row(row, size if row.status is ReportRunStatus.SUCCEEDED else None)
    await emit_object(conn, row, event, shown.model_dump(mode="json"))
