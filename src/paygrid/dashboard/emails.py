"""The emails page (issue 14 §7): the send log of emails to customers, newest first,
filterable by kind and status, each with the object it is about."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from paygrid.api.dependencies import deps_of
from paygrid.dashboard import forms as form_input
from paygrid.dashboard.rendering import DashboardRoute, render
from paygrid.dashboard.sessions import Viewer, current_viewer
from paygrid.domain.emails import EmailKind, EmailStatus
from paygrid.services.emails import views

router = APIRouter(route_class=DashboardRoute)
SignedIn = Annotated[Viewer, Depends(current_viewer)]
# What each status means to someone reading the list.
MEANINGS = {
    EmailStatus.QUEUED: "Waiting to be sent (or to be retried).",
    EmailStatus.SENDING: "Handed to the SMTP server; not confirmed yet.",
    EmailStatus.SENT: "Accepted by the SMTP server.",
    EmailStatus.FAILED: "Not sent: the server refused it, or every retry failed.",
    EmailStatus.RECORDED: "Recorded only: no SMTP server is configured (PAYGRID_SMTP_URL).",
    EmailStatus.SKIPPED: "Not sent: this kind of email is turned off in the billing settings.",
}


@router.get("/emails")
async def email_list(
    request: Request,
    viewer: SignedIn,
    kind: str | None = None,
    status: str | None = None,
    after: str | None = None,
    before: str | None = None,
) -> Response:
    viewer.require("customers:read")  # recipients are customers' addresses
    where = form_input.cursor(after, before)
    wanted_kind = EmailKind(kind) if kind in tuple(EmailKind) else None
    wanted_status = EmailStatus(status) if status in tuple(EmailStatus) else None
    rows, has_more = await views.list_emails(
        deps_of(request), viewer.tenant, where.page(), kind=wanted_kind, status=wanted_status
    )
    filters = {
        "kind": "" if wanted_kind is None else wanted_kind.value,
        "status": "" if wanted_status is None else wanted_status.value,
    }
    return render(
        request,
        "emails.html",
        {
            "emails": rows,
            "kinds": list(EmailKind),
            "statuses": list(EmailStatus),
            "meanings": {s.value: m for s, m in MEANINGS.items()},
            "filters": filters,
            "params": {k: v for k, v in filters.items() if v},
            "pager": form_input.pager([e.id for e in rows], has_more, where),
        },
    )
