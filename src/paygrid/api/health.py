"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from paygrid.api.dependencies import deps_of
from paygrid.db import engine

router = APIRouter(tags=["Health"])


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    """The process is up and serving."""
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness", responses={503: {"description": "Not ready"}})
async def readyz(request: Request) -> JSONResponse:
    """The database answers and its schema is at the newest migration."""
    head = request.app.state.migration_head
    try:
        current = await engine.current_revision(deps_of(request).pool)
    except Exception as error:  # any failure to reach the database means not ready
        return JSONResponse(
            {"status": "unavailable", "database": type(error).__name__}, status_code=503
        )
    ready = current == head
    return JSONResponse(
        {
            "status": "ready" if ready else "migrations_pending",
            "database": "ok",
            "migration": current,
            "migration_head": head,
        },
        status_code=200 if ready else 503,
    )
