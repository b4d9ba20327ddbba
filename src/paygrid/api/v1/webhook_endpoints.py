"""``/v1/webhook_endpoints``: where paygrid sends signed events, and what it sent."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from paygrid.api.authentication import secret_key
from paygrid.api.dependencies import deps_of
from paygrid.api.read_only import read_only, reads_of
from paygrid.api.responses import COMMON_ERRORS, Page, json_response, list_response
from paygrid.schemas.common import DeletedObject, ListObject
from paygrid.schemas.webhooks import (
    CreatedRange,
    DeliveriesCreated,
    RedeliverRequest,
    ReplayRequest,
    TestDelivery,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEndpointCreate,
    WebhookEndpointUpdate,
)
from paygrid.services import events as events_service
from paygrid.services import webhook_deliveries, webhook_endpoints
from paygrid.services.context import Tenant

router = APIRouter(prefix="/v1/webhook_endpoints", tags=["Webhooks"], responses=COMMON_ERRORS)
SecretTenant = Annotated[Tenant, Depends(secret_key)]


@router.post("", response_model=WebhookEndpoint, summary="Create a webhook endpoint")
async def create_endpoint(
    request: Request, body: WebhookEndpointCreate, tenant: SecretTenant
) -> Response:
    """The response includes the endpoint's signing `secret`, this once only. The URL must
    lead to a public address (loopback and private ones only for hosts in
    `PAYGRID_WEBHOOK_ALLOWED_HOSTS`), and be https in live mode; 400 `url_not_allowed`
    otherwise."""
    return json_response(await webhook_endpoints.create_endpoint(deps_of(request), tenant, body))


@router.get("", response_model=ListObject[WebhookEndpoint], summary="List webhook endpoints")
@read_only
async def list_endpoints(request: Request, tenant: SecretTenant, page: Page) -> Response:
    data, has_more = await webhook_endpoints.list_endpoints(reads_of(request), tenant, page)
    return list_response(request, data, has_more)


@router.get("/{endpoint_id}", response_model=WebhookEndpoint, summary="Retrieve a webhook endpoint")
async def get_endpoint(request: Request, endpoint_id: str, tenant: SecretTenant) -> Response:
    return json_response(
        await webhook_endpoints.get_endpoint(deps_of(request), tenant, endpoint_id)
    )


@router.post("/{endpoint_id}", response_model=WebhookEndpoint, summary="Update a webhook endpoint")
async def update_endpoint(
    request: Request, endpoint_id: str, body: WebhookEndpointUpdate, tenant: SecretTenant
) -> Response:
    """Only the fields sent change. `status: "disabled"` stops deliveries; `"enabled"`
    resumes them (also after paygrid disabled the endpoint because it answered 410)."""
    return json_response(
        await webhook_endpoints.update_endpoint(deps_of(request), tenant, endpoint_id, body)
    )


@router.delete("/{endpoint_id}", response_model=DeletedObject, summary="Delete a webhook endpoint")
async def delete_endpoint(request: Request, endpoint_id: str, tenant: SecretTenant) -> Response:
    return json_response(
        await webhook_endpoints.delete_endpoint(deps_of(request), tenant, endpoint_id)
    )


@router.post(
    "/{endpoint_id}/rotate_secret", response_model=WebhookEndpoint, summary="Rotate the secret"
)
async def rotate_secret(request: Request, endpoint_id: str, tenant: SecretTenant) -> Response:
    """Returns the new `secret`. For 24 hours every delivery carries two signatures in
    `webhook-signature`, one with the old secret and one with the new."""
    return json_response(
        await webhook_endpoints.rotate_secret(deps_of(request), tenant, endpoint_id)
    )


@router.get(
    "/{endpoint_id}/deliveries",
    response_model=ListObject[WebhookDelivery],
    summary="List an endpoint's deliveries",
)
@read_only
async def list_deliveries(
    request: Request, endpoint_id: str, tenant: SecretTenant, page: Page
) -> Response:
    """Newest first; each delivery lists every attempt with its time, status code, latency,
    the first 1 KB of the response body and the error."""
    deps = reads_of(request)
    await webhook_endpoints.require_endpoint(deps, tenant, endpoint_id)
    data, has_more = await webhook_endpoints.list_deliveries(
        deps, tenant, page, endpoint_id=endpoint_id
    )
    return list_response(request, data, has_more)


@router.post("/{endpoint_id}/test", response_model=TestDelivery, summary="Send a test ping")
async def send_test(request: Request, endpoint_id: str, tenant: SecretTenant) -> Response:
    """Queues a `ping` event (its object is this endpoint) for this endpoint only."""
    result = await webhook_deliveries.send_test(deps_of(request), tenant, endpoint_id)
    return json_response(TestDelivery(**result))


@router.post("/{endpoint_id}/replay", response_model=DeliveriesCreated, summary="Replay events")
async def replay(
    request: Request, endpoint_id: str, body: ReplayRequest, tenant: SecretTenant
) -> Response:
    """Send a range of events to this endpoint again: filter by `created.gte`/`created.lte`,
    `type`, and `status: "failed"` for only those whose last delivery here failed."""
    created = body.created or CreatedRange()
    count = await webhook_deliveries.replay(
        deps_of(request),
        tenant,
        endpoint_id,
        event_type=body.type,
        created_gte=_time(created.gte),
        created_lte=_time(created.lte),
        status=body.status,
    )
    return json_response(DeliveriesCreated(deliveries=count))


events_router = APIRouter(prefix="/v1/events", tags=["Webhooks"], responses=COMMON_ERRORS)


@events_router.get(
    "/{event_id}/deliveries",
    response_model=ListObject[WebhookDelivery],
    summary="List an event's deliveries",
)
async def event_deliveries(
    request: Request, event_id: str, tenant: SecretTenant, page: Page
) -> Response:
    deps = deps_of(request)
    await events_service.get_event(deps, tenant, event_id)
    data, has_more = await webhook_endpoints.list_deliveries(deps, tenant, page, event_id=event_id)
    return list_response(request, data, has_more)


@events_router.post(
    "/{event_id}/redeliver", response_model=DeliveriesCreated, summary="Redeliver an event"
)
async def redeliver(
    request: Request, event_id: str, body: RedeliverRequest, tenant: SecretTenant
) -> Response:
    """Send the event again, to `endpoint` or to every enabled endpoint subscribed to it."""
    count = await webhook_deliveries.redeliver(deps_of(request), tenant, event_id, body.endpoint)
    return json_response(DeliveriesCreated(deliveries=count))


def _time(unix: int | None) -> datetime | None:
    return None if unix is None else datetime.fromtimestamp(unix, UTC)
