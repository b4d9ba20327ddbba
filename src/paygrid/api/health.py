"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

import asyncpg
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from paygrid.api.dependencies import deps_of
from paygrid.api.errors import RETRY_AFTER_SECONDS
from paygrid.db import engine
from paygrid.db import workers as workers_db
from paygrid.schemas.common import unix
from paygrid.worker.runner import LIVE_WORKER_WINDOW

router = APIRouter(tags=["Health"])
log = structlog.get_logger("paygrid.api")


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    """The process is up and serving."""
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness", responses={503: {"description": "Not ready"}})
async def readyz(request: Request) -> JSONResponse:
    """The database answers and its schema is at the newest migration. Also lists the job
    workers with a recent heartbeat (their ids and queues; host names and process ids are
    for the operator's `paygrid queues`, not for an unauthenticated probe); having none does
    not make the API unready."""
    head = request.app.state.migration_head
    pool = deps_of(request).pool
    try:
        current = await engine.current_revision(pool)
        workers = await _live_workers(pool)
    except Exception as error:  # any failure to reach the database means not ready
        # Logged, not shown: the probe's answer names no exception or server detail.
        log.warning("readyz.database_unavailable", error=type(error).__name__)
        return JSONResponse(
            {"status": "unavailable", "database": "unavailable"},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    ready = current == head
    return JSONResponse(
        {
            "status": "ready" if ready else "migrations_pending",
            "database": "ok",
            "migration": current,
            "migration_head": head,
            "workers": workers,
        },
        status_code=200 if ready else 503,
    )


async def _live_workers(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    try:
        rows = await workers_db.live_workers(pool, LIVE_WORKER_WINDOW)
    except asyncpg.UndefinedTableError:  # migrations pending: no worker can have run yet
        return []
    return [
        {
            "id": row["id"],
            "queues": row["queues"],
            "concurrency": row["concurrency"],
            "started": unix(row["started_at"]),
            "heartbeat": unix(row["heartbeat_at"]),
        }
        for row in rows
    ]
