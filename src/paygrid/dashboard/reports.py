"""The Reports page: the payments summary for a window, a time zone and the dimensions the
form picks, as a table and as a CSV download, through the same use case as
``GET /v1/reports/payments_summary`` (so the download equals the API's CSV)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from paygrid.api.dependencies import deps_of
from paygrid.dashboard.rendering import DashboardRoute, render, with_headers
from paygrid.dashboard.sessions import Viewer, current_viewer
from paygrid.domain.errors import InvalidRequest
from paygrid.domain.reports import Dimension
from paygrid.services.reports import payments_summary as summaries
from paygrid.services.reports.parameters import summary_request, zone

router = APIRouter(route_class=DashboardRoute)
SignedIn = Annotated[Viewer, Depends(current_viewer)]
Choice = Annotated[list[str], Query(max_length=4)]
# Offered in the form's list; any IANA name may be typed.
ZONES = (
    "UTC",
    "Africa/Lagos",
    "Africa/Nairobi",
    "Africa/Johannesburg",
    "Europe/London",
    "Europe/Paris",
    "America/New_York",
    "America/Los_Angeles",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Asia/Tokyo",
    "Australia/Sydney",
)
MEASURE_LABELS = (
    ("count", "Payments"),
    ("amount", "Amount"),
    ("amount_received", "Received"),
    ("amount_refunded", "Refunded"),
    ("fee", "Fees"),
    ("net", "Net"),
    ("fee_pending_count", "Fee not yet known"),
)


@router.get("/reports")
async def reports_page(
    request: Request,
    viewer: SignedIn,
    start: Annotated[str | None, Query(alias="from", max_length=20)] = None,
    end: Annotated[str | None, Query(alias="to", max_length=20)] = None,
    timezone: Annotated[str, Query(max_length=64)] = "UTC",
    group_by: Choice = ["day"],  # noqa: B006 - FastAPI copies a query list's default
) -> Response:
    viewer.require("reports:read")
    deps = deps_of(request)
    form = _form(deps.clock.now(), start, end, timezone, group_by)
    context: dict[str, object] = {"form": form, "zones": ZONES, "measures": MEASURE_LABELS}
    try:
        checked = summary_request(
            deps.clock.now(),
            start=form.start,
            end=form.end,
            timezone=timezone,
            group_by=group_by,
            synchronous=True,
        )
    except InvalidRequest as error:
        return render(request, "reports.html", {**context, "error": error}, status_code=400)
    rows = await summaries.summary_rows(deps, viewer.tenant, checked)
    return render(
        request,
        "reports.html",
        {
            **context,
            "rows": [summaries.cells(checked, row) for row in rows],
            "dimensions": [d.value for d in checked.group_by],
            "csv_url": f"/dashboard/reports.csv?{form.query()}",
        },
    )


@router.get("/reports.csv")
async def reports_csv(
    request: Request,
    viewer: SignedIn,
    start: Annotated[str | None, Query(alias="from", max_length=20)] = None,
    end: Annotated[str | None, Query(alias="to", max_length=20)] = None,
    timezone: Annotated[str, Query(max_length=64)] = "UTC",
    group_by: Choice = ["day"],  # noqa: B006 - FastAPI copies a query list's default
) -> Response:
    """The page's report as the API's CSV, downloaded."""
    viewer.require("reports:read")
    deps = deps_of(request)
    form = _form(deps.clock.now(), start, end, timezone, group_by)
    checked = summary_request(
        deps.clock.now(),
        start=form.start,
        end=form.end,
        timezone=timezone,
        group_by=group_by,
        synchronous=True,
    )
    content = await summaries.payments_summary_csv(deps, viewer.tenant, checked)
    name = f"payments_summary_{int(checked.start.timestamp())}_{int(checked.end.timestamp())}.csv"
    return with_headers(
        Response(
            content,
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{name}"'},
        )
    )


@dataclass(frozen=True, slots=True)
class ReportForm:
    """What the form shows: without dates, the last 30 days to today in the time zone."""

    start: str
    end: str
    timezone: str
    group_by: frozenset[str]
    dimensions: tuple[str, ...] = tuple(d.value for d in Dimension)

    def query(self) -> str:
        pairs = [("from", self.start), ("to", self.end), ("timezone", self.timezone)]
        chosen = [d for d in self.dimensions if d in self.group_by]
        return urlencode(pairs + [("group_by", d) for d in chosen])


def _form(
    now: datetime, start: str | None, end: str | None, timezone: str, group_by: list[str]
) -> ReportForm:
    try:
        today = now.astimezone(zone(timezone)).date()
    except InvalidRequest:
        today = now.date()
    return ReportForm(
        start=start or (today - timedelta(days=29)).isoformat(),
        end=end or (today + timedelta(days=1)).isoformat(),
        timezone=timezone,
        group_by=frozenset(group_by) | {Dimension.CURRENCY.value},
    )
