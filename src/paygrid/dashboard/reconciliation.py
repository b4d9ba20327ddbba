"""Reconciliation pages: the runs (newest first), a run with its counts and the
discrepancies it found, and resolving an open one with a note (``reconciliation:write``),
through the same use cases as ``/v1/reconciliation_runs`` and
``/v1/reconciliation_discrepancies``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from paygrid.api.dependencies import deps_of
from paygrid.dashboard import forms as form_input
from paygrid.dashboard.rendering import DashboardRoute, redirect, render
from paygrid.dashboard.sessions import Viewer, current_viewer, form_viewer
from paygrid.domain.errors import InvalidRequest
from paygrid.domain.pagination import PageRequest
from paygrid.domain.reconciliation import DiscrepancyStatus
from paygrid.services.reconciliation import discrepancies, runs

router = APIRouter(route_class=DashboardRoute)
SignedIn = Annotated[Viewer, Depends(current_viewer)]
Posted = Annotated[Viewer, Depends(form_viewer)]
NOTICES = {"resolved": "Resolved, with your note (recorded in the audit log)."}


@router.get("/reconciliation")
async def run_list(
    request: Request, viewer: SignedIn, after: str | None = None, before: str | None = None
) -> Response:
    viewer.require("reconciliation:read")
    where = form_input.cursor(after, before)
    rows, has_more = await runs.list_runs(deps_of(request), viewer.tenant, where.page())
    return render(
        request,
        "reconciliation_runs.html",
        {"runs": rows, "pager": form_input.pager([r.id for r in rows], has_more, where)},
    )


@router.get("/reconciliation/{run_id}")
async def run_detail(
    request: Request,
    run_id: str,
    viewer: SignedIn,
    status: str | None = None,
    notice: str | None = None,
) -> Response:
    viewer.require("reconciliation:read")
    deps = deps_of(request)
    run = await runs.get_run(deps, viewer.tenant, run_id)
    wanted = DiscrepancyStatus(status) if status in tuple(DiscrepancyStatus) else None
    found, has_more = await discrepancies.list_discrepancies(
        deps, viewer.tenant, PageRequest(limit=100), run=run.id, status=wanted
    )
    return render(
        request,
        "reconciliation_run.html",
        {
            "run": run,
            "discrepancies": found,
            "more": has_more,
            "status": "" if wanted is None else wanted.value,
            "statuses": [s.value for s in DiscrepancyStatus],
            "notice": NOTICES.get(notice or ""),
        },
    )


@router.post("/reconciliation/discrepancies/{discrepancy_id}/resolve")
async def resolve(request: Request, discrepancy_id: str, viewer: Posted) -> Response:
    viewer.require("reconciliation:write")
    form = await form_input.fields(request)
    note = form.get("note", "")
    if not 0 < len(note) <= 2000:
        raise InvalidRequest("note: write why it is resolved (up to 2000 characters)", param="note")
    resolved = await discrepancies.resolve(deps_of(request), viewer.tenant, discrepancy_id, note)
    return redirect(f"/dashboard/reconciliation/{resolved.run}", notice="resolved")
