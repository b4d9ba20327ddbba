"""``GET /v1/audit_log``: who changed what, newest first. Needs ``admin:read``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from paygrid.api.authentication import admin_key
from paygrid.api.read_only import read_only, reads_of
from paygrid.api.responses import COMMON_ERRORS, Page, list_response
from paygrid.schemas.audit import AuditEntry
from paygrid.schemas.common import ListObject
from paygrid.services import audit
from paygrid.services.context import Tenant

router = APIRouter(prefix="/v1/audit_log", tags=["Audit log"], responses=COMMON_ERRORS)


@router.get("", response_model=ListObject[AuditEntry], summary="List audit entries")
@read_only
async def list_entries(
    request: Request,
    tenant: Annotated[Tenant, Depends(admin_key)],
    page: Page,
    object: Annotated[
        str | None, Query(max_length=64, description="Entries about this object id.")
    ] = None,
    actor: Annotated[
        str | None, Query(max_length=128, description="e.g. `api_key:key_...`, `cli:root`.")
    ] = None,
    action: Annotated[
        str | None, Query(max_length=64, description="e.g. `payment.updated`.")
    ] = None,
) -> Response:
    """Every change to merchants, API keys, customers, payment methods, payments, refunds,
    connector accounts, routing rules and webhook endpoints, with the values before and
    after (secrets left out), the actor, request id and IP. Entries are chained by hash per
    merchant a few seconds after they are written (`sealed`); `paygrid audit verify` checks
    the chain."""
    data, has_more = await audit.list_entries(
        reads_of(request),
        tenant,
        page,
        object_id=object,
        actor=actor,
        action=action,
    )
    return list_response(request, data, has_more)
