"""The send log as the dashboard lists it: a tenant's emails, newest first."""

from __future__ import annotations

from paygrid.db import emails as emails_db
from paygrid.db.emails import EmailRow
from paygrid.dependencies import Deps
from paygrid.domain.emails import EmailKind, EmailStatus
from paygrid.domain.pagination import PageRequest
from paygrid.services.context import Tenant


async def list_emails(
    deps: Deps,
    tenant: Tenant,
    page: PageRequest,
    *,
    kind: EmailKind | None = None,
    status: EmailStatus | None = None,
) -> tuple[list[EmailRow], bool]:
    """A page of the tenant's emails, optionally of one kind or status."""
    return await emails_db.list_emails(
        deps.pool, tenant.merchant_id, tenant.livemode, page, kind=kind, status=status
    )
