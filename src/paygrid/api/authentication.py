"""API key authentication for ``/v1`` and the per-route key-kind checks."""

from __future__ import annotations

import structlog
from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from paygrid.api.middleware import header, send_error, state
from paygrid.db import audit as audit_db
from paygrid.domain.errors import AuthenticationFailed, PaygridError, PermissionDenied
from paygrid.domain.scopes import required_scope
from paygrid.services.context import Tenant
from paygrid.services.merchants import Authenticator, Principal

PROVIDER_WEBHOOKS_PREFIX = "/v1/provider_webhooks/"


class ApiKeyAuth:
    """Resolve ``Authorization: Bearer <key>`` on every ``/v1`` request before routing, so
    idempotency and handlers always know the merchant and mode."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not scope["path"].startswith("/v1/")
            or scope["path"].startswith(PROVIDER_WEBHOOKS_PREFIX)  # signed by the provider
        ):
            await self.app(scope, receive, send)
            return
        try:
            authenticator: Authenticator = scope["app"].state.authenticator
            principal = await authenticator.authenticate(_bearer(header(scope, b"authorization")))
        except PaygridError as error:
            await send_error(scope, send, error)
            return
        state(scope)["principal"] = principal
        audit_db.set_actor(f"api_key:{principal.key_id}")
        structlog.contextvars.bind_contextvars(
            merchant_id=principal.merchant_id, livemode=principal.livemode, key_id=principal.key_id
        )
        await self.app(scope, receive, send)


def _bearer(value: str | None) -> str:
    if not value:
        raise AuthenticationFailed(
            "You did not provide an API key. Send it as 'Authorization: Bearer sk_test_...'.",
            code="api_key_missing",
        )
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed(
            "Malformed Authorization header; expected 'Bearer <api key>'.", code="api_key_invalid"
        )
    return token.strip()


def principal_of(request: Request) -> Principal:
    principal: Principal = request.state.principal
    return principal


async def secret_key(request: Request) -> Tenant:
    """Dependency: the route needs a secret key. (``async`` so FastAPI does not run it in a
    thread pool.)"""
    principal = principal_of(request)
    if principal.kind != "secret":
        raise PermissionDenied(
            "A publishable key can only tokenize payment methods; use a secret key for this "
            "request.",
            code="secret_key_required",
        )
    needed = required_scope(request.method, request.url.path)
    if needed is not None and needed not in principal.scopes:
        raise PermissionDenied(
            f"This API key lacks the '{needed}' scope this request needs.",
            code="insufficient_permissions",
            missing_scope=needed,
        )
    return Tenant(principal.merchant_id, principal.livemode)


async def admin_key(request: Request) -> Tenant:
    """Dependency: a secret key with the admin scopes (checked by path in ``secret_key``:
    every ``/v1/admin`` route needs ``admin:read`` or ``admin:write``)."""
    return await secret_key(request)


async def any_key(request: Request) -> Tenant:
    """Dependency: publishable keys are allowed too."""
    principal = principal_of(request)
    return Tenant(principal.merchant_id, principal.livemode)
