"""``GET /metrics``: Prometheus text for this process (see ``paygrid.observability.metrics``).
Not under ``/v1``, so no API key: expose it to your Prometheus, not to the internet."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from paygrid.api.dependencies import deps_of
from paygrid.observability.metrics import CONTENT_TYPE

router = APIRouter()


# Left out of the OpenAPI document: an operator's endpoint, not part of the merchant API.
@router.get("/metrics", response_class=Response, include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Request, connector, webhook, queue, payment and circuit breaker metrics in the
    Prometheus text format."""
    deps = deps_of(request)
    body = await deps.metrics.render(deps.pool, deps.connectors.breaker_states(), deps.clock.now())
    return Response(body, media_type=CONTENT_TYPE)
