"""Access to what start-up wired into the app."""

from __future__ import annotations

from fastapi import Request

from paygrid.dependencies import Deps
from paygrid.services.idempotency_keys import IdempotencyClaim


def deps_of(request: Request) -> Deps:
    deps: Deps = request.app.state.deps
    return deps


def idempotency_key_of(request: Request) -> str | None:
    key: str | None = getattr(request.state, "idempotency_key", None)
    return key


def idempotency_claim_of(request: Request) -> IdempotencyClaim | None:
    """The idempotency key the middleware left for the use case to claim (and answer) in
    its own statements, for the requests in ``CLAIMED_BY_USE_CASE``."""
    claim: IdempotencyClaim | None = getattr(request.state, "idempotency_claim", None)
    return claim
