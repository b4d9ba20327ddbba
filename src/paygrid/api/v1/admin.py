"""``/v1/admin``: queue administration. Needs a secret key with the ``admin`` scope
(``paygrid keys create --merchant ... --scope admin``)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from paygrid.api.authentication import admin_key
from paygrid.api.dependencies import deps_of
from paygrid.api.responses import COMMON_ERRORS, json_response
from paygrid.schemas.common import RequestModel
from paygrid.schemas.webhooks import DeliveriesCreated
from paygrid.services import queue_admin
from paygrid.services.context import Tenant

router = APIRouter(prefix="/v1/admin", tags=["Admin"], responses=COMMON_ERRORS)
AdminTenant = Annotated[Tenant, Depends(admin_key)]


class QueueStats(BaseModel):
    name: str
    counts: dict[str, int] = Field(
        description="This merchant's jobs by status: queued, running, failed, succeeded, dead."
    )
    oldest_due_seconds: float | None = Field(description="Age of the oldest job that is due.")


class QueuesOverview(BaseModel):
    object: Literal["queue_stats"] = "queue_stats"
    queues: list[QueueStats] = Field(
        description="Only queues holding jobs of this merchant in this mode."
    )


class PauseRequest(RequestModel):
    endpoint: str | None = Field(default=None, description="One endpoint; default: all of them.")


class PauseResult(BaseModel):
    object: Literal["webhook_pause"] = "webhook_pause"
    paused: bool
    endpoints: int


@router.get("/queues", response_model=QueuesOverview, summary="Queue statistics")
async def queues(request: Request, tenant: AdminTenant) -> Response:
    """Per queue: this merchant's jobs in this mode (webhook deliveries, event publishes,
    provider webhooks) by state, and the age of the oldest due one. Platform-wide counts
    and the workers are for the operator: ``paygrid queues``."""
    overview = await queue_admin.merchant_queue_stats(deps_of(request), tenant)
    return JSONResponse(overview)


@router.post("/webhooks/pause", response_model=PauseResult, summary="Pause webhook delivery")
async def pause(request: Request, body: PauseRequest, tenant: AdminTenant) -> Response:
    """Hold deliveries to one endpoint (or all); events keep queueing and nothing is lost."""
    changed = await queue_admin.set_delivery_paused(
        deps_of(request), tenant, body.endpoint, paused=True
    )
    return json_response(PauseResult(paused=True, endpoints=changed))


@router.post("/webhooks/resume", response_model=PauseResult, summary="Resume webhook delivery")
async def resume(request: Request, body: PauseRequest, tenant: AdminTenant) -> Response:
    changed = await queue_admin.set_delivery_paused(
        deps_of(request), tenant, body.endpoint, paused=False
    )
    return json_response(PauseResult(paused=False, endpoints=changed))


@router.post(
    "/webhooks/retry_failed", response_model=DeliveriesCreated, summary="Retry dead letters"
)
async def retry_failed(request: Request, tenant: AdminTenant) -> Response:
    """Queue every dead-lettered delivery of this merchant and mode again."""
    count = await queue_admin.retry_failed(deps_of(request), tenant)
    return json_response(DeliveriesCreated(deliveries=count))
