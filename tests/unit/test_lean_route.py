"""``LeanRoute`` answers exactly as FastAPI's own ``APIRoute`` does: the same endpoint,
mounted both ways on one app with paygrid's error handlers, gets the same status and body for
valid and invalid bodies of every kind, and the app's real ``POST /v1/payments`` is a
``LeanRoute``."""

from __future__ import annotations

import json
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import Response

from paygrid.api import errors
from paygrid.api.lean_route import LeanRoute
from paygrid.app import create_app
from paygrid.config import Settings
from paygrid.schemas.payments import PaymentCreate
from paygrid.services.context import Tenant

CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}
BODIES: list[bytes] = [
    json.dumps({"amount": 2000, "currency": "USD"}).encode(),
    json.dumps(
        {
            "amount": 2000,
            "currency": "USD",
            "confirm": True,
            "payment_method_data": {"type": "card", "card": CARD},
            "metadata": {"order": "42"},
        }
    ).encode(),
    b"{}",
    b"",
    b"   ",
    b"null",
    b"[]",
    b'"text"',
    b"12",
    b"{bad json",
    b'{"amount": 2000, "currency": "USD"',
    json.dumps({"amount": "abc", "currency": "USD"}).encode(),
    json.dumps({"amount": 20.5, "currency": "USD"}).encode(),
    json.dumps({"amount": 2000.0, "currency": "USD"}).encode(),
    json.dumps({"amount": -1, "currency": "USD"}).encode(),
    json.dumps({"amount": 10**30, "currency": "USD"}).encode(),
    json.dumps({"amount": True, "currency": "USD"}).encode(),
    json.dumps({"amount": 2000}).encode(),
    json.dumps({"amount": 2000, "currency": "usd"}).encode(),
    json.dumps({"amount": 2000, "currency": "USD", "surprise": 1}).encode(),
    json.dumps({"amount": 2000, "currency": "USD", "metadata": {"k": "v\u0000"}}).encode(),
    json.dumps({"amount": 2000, "currency": "USD", "metadata": []}).encode(),
    json.dumps(
        {"amount": 2000, "currency": "USD", "description": "card 4242424242424242"}
    ).encode(),
    json.dumps(
        {"amount": 2000, "currency": "USD", "payment_method_data": {"type": "card", "card": {}}}
    ).encode(),
    json.dumps({"amount": 2000, "currency": "USD", "capture_method": "sometimes"}).encode(),
    json.dumps({"amount": 2000, "currency": "USD", "confirm": "yes"}).encode(),
    json.dumps({"amount": 2000, "currency": "USD", "confirm": True}).encode(),
]


async def tenant_of(request: Request) -> Tenant:
    return Tenant("mer_test", False)


async def echo(
    request: Request, body: PaymentCreate, tenant: Annotated[Tenant, Depends(tenant_of)]
) -> Response:
    return Response(
        json.dumps({"body": body.model_dump(mode="json"), "merchant": tenant.merchant_id}),
        media_type="application/json",
    )


def twin_app() -> FastAPI:
    app = FastAPI()
    errors.install(app)
    router = APIRouter()
    router.add_api_route("/plain", echo, methods=["POST"])
    router.add_api_route("/lean", echo, methods=["POST"], route_class_override=LeanRoute)
    app.include_router(router)
    return app


def _comparable(reply: httpx.Response) -> tuple[int, Any]:
    payload = reply.json()
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        payload["error"].pop("request_id", None)
    return reply.status_code, payload


@pytest.mark.parametrize("body", BODIES, ids=[b.decode()[:40] for b in BODIES])
async def test_lean_route_answers_as_fastapi_does(body: bytes) -> None:
    transport = httpx.ASGITransport(app=twin_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        headers = {"content-type": "application/json"}
        plain = await client.post("/plain", content=body, headers=headers)
        lean = await client.post("/lean", content=body, headers=headers)
    assert _comparable(lean) == _comparable(plain)


def test_lean_route_refuses_endpoints_it_cannot_serve_alike() -> None:
    async def with_query(request: Request, limit: int = 10) -> Response:
        return Response()

    def synchronous_dependency(request: Request) -> Tenant:
        return Tenant("mer_test", False)

    async def with_sync_dependency(
        tenant: Annotated[Tenant, Depends(synchronous_dependency)],
    ) -> Response:
        return Response()

    for endpoint in (with_query, with_sync_dependency):
        router = APIRouter()
        with pytest.raises(TypeError, match="LeanRoute"):
            router.add_api_route("/x", endpoint, methods=["POST"], route_class_override=LeanRoute)


def test_create_payment_is_served_by_a_lean_route() -> None:
    app = create_app(Settings())
    found = [
        route
        for route in app.router.routes
        for route in getattr(getattr(route, "original_router", None), "routes", [route])
        if getattr(route, "path", None) == "/v1/payments"
        and "POST" in getattr(route, "methods", ())
    ]
    assert found and all(isinstance(route, LeanRoute) for route in found)
