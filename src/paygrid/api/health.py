"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from paygrid.api.dependencies import deps_of
from paygrid.api.errors import RETRY_AFTER_SECONDS
from paygrid.schemas.common import unix
from paygrid.services import health, read_replica
from paygrid.worker.runner import LIVE_WORKER_WINDOW

router = APIRouter(tags=["Health"])
log = structlog.get_logger("paygrid.api")


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    """The process is up and serving."""
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness", responses={503: {"description": "Not ready"}})
async def readyz(request: Request) -> JSONResponse:
    """The database answers and its schema is at the newest migration, and no restore
    fences writes (503 ``restoring`` while ``paygrid restore`` runs). Also lists the job
    workers with a recent heartbeat (their ids and queues; host names and process ids are
    for the operator's `paygrid queues`, not for an unauthenticated probe); having none does
    not make the API unready. With a read replica configured
    (`PAYGRID_READ_DATABASE_URL`), `read_replica` is `ok`, or `degraded` while it cannot be
    reached (reads then go to the primary; still ready)."""
    head = request.app.state.migration_head
    fence = request.app.state.write_fence
    if fence.raised:  # paygrid restore: out of the load balancer until it reopens
        return JSONResponse(
            {"status": "restoring"},
            status_code=503,
            headers={"Retry-After": str(fence.retry_after)},
        )
    try:
        found = await health.readiness(deps_of(request), LIVE_WORKER_WINDOW)
    except Exception as error:  # any failure to reach the database means not ready
        # Logged, not shown: the probe's answer names no exception or server detail.
        log.warning("readyz.database_unavailable", error=type(error).__name__)
        return JSONResponse(
            {"status": "unavailable", "database": "unavailable"},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    ready = found.migration == head
    body: dict[str, Any] = {
        "status": "ready" if ready else "migrations_pending",
        "database": "ok",
        "migration": found.migration,
        "migration_head": head,
        "workers": [_worker(w) for w in found.workers],
    }
    # A replica that fails is `degraded`, never a reason to be unready: reads go to the primary.
    replica = await read_replica.replica_health(deps_of(request))
    if replica is not None:
        body["read_replica"] = replica.value
    return JSONResponse(body, status_code=200 if ready else 503)


def _worker(worker: health.WorkerRow) -> dict[str, Any]:
    return {
        "id": worker.id,
        "queues": list(worker.queues),
        "concurrency": worker.concurrency,
        "started": unix(worker.started_at),
        "heartbeat": unix(worker.heartbeat_at),
    }
