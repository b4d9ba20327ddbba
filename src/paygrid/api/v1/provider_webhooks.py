"""``POST /v1/provider_webhooks/{connector_account_id}``: where Stripe and Paystack send
their events. Authenticated by the provider's signature, not by an API key."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from paygrid.api.dependencies import deps_of
from paygrid.api.middleware import state
from paygrid.api.responses import COMMON_ERRORS
from paygrid.services import provider_webhooks

router = APIRouter(
    prefix="/v1/provider_webhooks", tags=["Provider webhooks"], responses=COMMON_ERRORS
)


@router.post(
    "/{connector_account_id}",
    summary="Receive a provider webhook",
    response_model=dict[str, Any],
    openapi_extra={"security": []},
)
async def receive(request: Request, connector_account_id: str) -> JSONResponse:
    """Register this URL (each connector account shows it as `webhook_url`) at the provider.
    Stripe events are checked against `Stripe-Signature` (HMAC-SHA256 of `t.body`, 300 s
    tolerance) with the account's `webhook_secret`; Paystack events against
    `x-paystack-signature` (HMAC-SHA512 of the body) with its secret key. A bad signature
    gets 400 `signature_invalid` and nothing is applied. A valid event is stored once per
    provider event id and applied; repeats are acknowledged with `duplicate: true`."""
    raw_body = state(request.scope).get("body")
    if raw_body is None:
        raw_body = await request.body()
    headers = {key.lower(): value for key, value in request.headers.items()}
    body = await provider_webhooks.receive(
        deps_of(request), connector_account_id, raw_body, headers
    )
    return JSONResponse(body)
