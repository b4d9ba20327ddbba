"""API key authentication and permission checks for ``/v1``.

Both happen in the HTTP edge (``api/edge.py``), before rate limits, idempotency and
routing, so that an idempotent replay is refused exactly like a first request: the key kind
and the scope a request needs follow from its method and path alone (no lookup), and the
route dependencies below check the same rule again.
"""

from __future__ import annotations

import base64
import binascii

import structlog
from fastapi import Request
from starlette.types import Scope

from paygrid.api.errors import methods_served
from paygrid.api.middleware import header, state
from paygrid.api.security import PUBLISHABLE_ROUTES
from paygrid.domain.errors import AuthenticationFailed, PermissionDenied
from paygrid.domain.scopes import required_scope
from paygrid.services import audit_actor
from paygrid.services.context import Tenant
from paygrid.services.merchants import Authenticator, Principal

PROVIDER_WEBHOOKS_PREFIX = "/v1/provider_webhooks/"


def needs_key(path: str) -> bool:
    """Every ``/v1`` path but providers' webhooks, which the provider signs."""
    return path.startswith("/v1/") and not path.startswith(PROVIDER_WEBHOOKS_PREFIX)


async def authenticate(scope: Scope) -> Principal:
    """Resolve the API key (``Authorization: Bearer <key>``, or HTTP Basic with the key as
    user name) and refuse what it may not do (raises the ``PaygridError`` to answer with),
    so idempotency and handlers always know the merchant and mode and never serve a key
    beyond its permissions. The principal goes into the request state, the audit context
    and the log context."""
    authenticator: Authenticator = scope["app"].state.authenticator
    principal = await authenticator.authenticate(api_key_of(header(scope, b"authorization")))
    try:
        authorize(principal, scope["method"], scope["path"])
    except PermissionDenied:
        # Where no route serves this method, the router's 404 or 405 (with its ``Allow``)
        # answers instead, whatever the key: nothing is read or written.
        if scope["method"] in methods_served(scope["app"], scope["path"]):
            raise
    state(scope)["principal"] = principal
    audit_actor.act_as_api_key(principal.key_id)
    structlog.contextvars.bind_contextvars(
        merchant_id=principal.merchant_id, livemode=principal.livemode, key_id=principal.key_id
    )
    return principal


def api_key_of(value: str | None) -> str:
    """The API key from an ``Authorization`` header: ``Bearer <key>``, or ``Basic`` with the
    key as user name and an empty (ignored) password, as ``curl -u sk_test_...:`` sends."""
    if not value:
        raise AuthenticationFailed(
            "You did not provide an API key. Send it as 'Authorization: Bearer sk_test_...'.",
            code="api_key_missing",
        )
    scheme, _, token = value.partition(" ")
    if scheme.lower() == "basic":
        token = _basic_user(token.strip())
    elif scheme.lower() != "bearer":
        token = ""
    if not token.strip():
        raise AuthenticationFailed(
            "Malformed Authorization header; expected 'Bearer <api key>' or HTTP Basic with "
            "the API key as user name.",
            code="api_key_invalid",
        )
    return token.strip()


def _basic_user(credentials: str) -> str:
    try:
        decoded = base64.b64decode(credentials, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return ""
    return decoded.partition(":")[0]


def authorize(principal: Principal, method: str, path: str) -> None:
    """Raise ``PermissionDenied`` unless ``principal`` may make this request: a publishable
    key only where publishable keys are allowed, a secret key only with the scope the path
    needs. Pure, so it runs before idempotency without a query."""
    if principal.kind != "secret":
        if method.upper() not in PUBLISHABLE_ROUTES.get(path, frozenset()):
            raise PermissionDenied(
                "A publishable key can only tokenize payment methods; use a secret key for "
                "this request.",
                code="secret_key_required",
            )
        return
    needed = required_scope(method, path)
    if needed is not None and needed not in principal.scopes:
        raise PermissionDenied(
            f"This API key lacks the '{needed}' scope this request needs.",
            code="insufficient_permissions",
            missing_scope=needed,
        )


def principal_of(request: Request) -> Principal:
    principal: Principal = request.state.principal
    return principal


async def secret_key(request: Request) -> Tenant:
    """Dependency: the route needs a secret key with the path's scope. ``authenticate``
    already checked this; checking again keeps a route safe if it is ever mounted without
    the middleware. (``async`` so FastAPI does not run it in a thread pool.)"""
    principal = principal_of(request)
    if principal.kind != "secret":
        raise PermissionDenied(
            "A publishable key can only tokenize payment methods; use a secret key for this "
            "request.",
            code="secret_key_required",
        )
    authorize(principal, request.method, request.scope["path"])  # as the edge did
    return Tenant(principal.merchant_id, principal.livemode)


async def admin_key(request: Request) -> Tenant:
    """Dependency: a secret key with the admin scopes (checked by path in ``secret_key``:
    every ``/v1/admin`` route needs ``admin:read`` or ``admin:write``)."""
    return await secret_key(request)


async def any_key(request: Request) -> Tenant:
    """Dependency: publishable keys are allowed too."""
    principal = principal_of(request)
    return Tenant(principal.merchant_id, principal.livemode)
